"""The archive in a SharePoint document library, through office365-rest-python-client.

Folders are '/'-separated paths below the library (its URL name, which may
differ from its title); every call addresses them by server-relative path, so
spaces, accents and apostrophes in domain and file names travel correctly.
Library errors become the project's errors here, with the setting to fix.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

from office365.runtime.client_request_exception import ClientRequestException
from office365.runtime.queries.service_operation import ServiceOperationQuery
from office365.sharepoint.client_context import ClientContext
from office365.sharepoint.exceptions import SecurityValidationException
from office365.sharepoint.files.file import File
from office365.sharepoint.files.move_operations import MoveOperations
from requests.exceptions import RequestException, SSLError

from certrenew.adapters.archive import StoredFile
from certrenew.adapters.archive.sharepoint.auth import (
    ENV,
    AppTokenSource,
    load_app_certificate,
    site_scope,
)
from certrenew.adapters.archive.sharepoint.http import PatientSession
from certrenew.config import SharePointSettings
from certrenew.errors import ArchiveError, AuthenticationError, ConfigError
from certrenew.naming import check_archive_name
from certrenew.retry import RetryPolicy

_REQUIRED = ("site_url", "library", "client_id", "cert_path")


class SharePointArchive:
    """Archive primitives on one document library of one site."""

    def __init__(
        self,
        connect: Callable[[], ClientContext],
        site_url: str,
        library: str,
        chunk_size: int,
        token_source: AppTokenSource,
    ) -> None:
        self._connect = connect
        self._ctx = connect()
        self._site_url = site_url.rstrip("/")
        self._library = library.strip("/")
        self._chunk_size = chunk_size
        self.token_source = token_source
        self._ensured: set[str] = set()

    @classmethod
    def from_settings(
        cls, settings: SharePointSettings, sleep: Callable[[float], None] = time.sleep
    ) -> SharePointArchive:
        """Reads the app certificate now (bad configuration fails early); no network until used."""
        missing = [key for key in _REQUIRED if getattr(settings, key) is None]
        authority = settings.authority_url()
        if authority is None:
            missing.append("tenant_id")
        if missing:
            names = ", ".join(f"{key} ({ENV}{key.upper()})" for key in missing)
            raise ConfigError(f"archive = 'sharepoint' needs sharepoint settings: {names}")
        assert settings.site_url and settings.library and settings.client_id and authority
        assert settings.cert_path is not None
        certificate = load_app_certificate(settings.cert_path, settings.secret_cert_password())
        timeout = (10.0, settings.timeout_seconds)
        session = PatientSession(
            RetryPolicy(
                attempts=settings.retry_attempts,
                max_delay_seconds=settings.retry_max_delay_seconds,
            ),
            verify=str(settings.ca_bundle) if settings.ca_bundle else True,
            sleep=sleep,
            timeout=timeout,
            systems={
                _origin_of(settings.site_url): "SharePoint",
                _origin_of(authority): "the sign-in authority",
            },
        )
        tokens = AppTokenSource(
            settings.client_id, authority, certificate, site_scope(settings.site_url), session
        )
        site_url = settings.site_url

        def connect() -> ClientContext:
            return (
                ClientContext(site_url)
                .with_access_token(tokens)
                .with_transport(session=session, timeout=timeout)
            )

        return cls(connect, settings.site_url, settings.library, settings.chunk_size, tokens)

    # -- the Archive protocol -------------------------------------------------

    def ensure_folder(self, folder: str) -> None:
        if folder in self._ensured:
            return
        try:
            with self._translate("create folder", folder):
                root = self._ctx.web.get_folder_by_server_relative_path(self._path(""))
                root.folders.ensure_by_path(folder.strip("/"))
                self._ctx.execute_query()
        except _NotFound:
            raise self._no_library() from None
        self._ensured.add(folder)

    def list_files(self, folder: str) -> list[StoredFile]:
        target = self._ctx.web.get_folder_by_server_relative_path(self._path(folder)).files
        try:
            with self._translate("list", folder):
                self._ctx.load(target)
                self._ctx.execute_query()
        except _NotFound:
            return []
        return [StoredFile(str(f.name), int(f.length or 0)) for f in target]

    def read_file(self, folder: str, name: str) -> bytes:
        with self._translate("read", f"{folder}/{name}"):
            content = self._file(folder, name).get_content()
            self._ctx.execute_query()
        return bytes(content.value)

    def write_file(self, folder: str, name: str, data: bytes) -> None:
        """Simple upload up to chunk_size; above it an upload session (start/continue/finish)."""
        with self._translate("upload", f"{folder}/{name}"):
            files = self._ctx.web.get_folder_by_server_relative_path(self._path(folder)).files
            files.create_upload_session(io.BytesIO(data), self._chunk_size, file_name=name)
            self._ctx.execute_query()

    def rename_file(self, folder: str, name: str, new_name: str) -> None:
        """A move within the folder that never replaces a file already named `new_name`."""
        with self._translate("rename", f"{folder}/{name}"):
            params = {
                "DecodedUrl": self._path(folder, new_name),
                "moveOperations": MoveOperations.none.value,
            }
            self._ctx.add_query(
                ServiceOperationQuery(self._file(folder, name), "MoveToUsingPath", params)
            )
            self._ctx.execute_query()

    def delete_file(self, folder: str, name: str) -> None:
        with self._translate("delete", f"{folder}/{name}"):
            self._file(folder, name).delete_object()
            self._ctx.execute_query()

    def location(self, folder: str) -> str:
        parts = urlsplit(self._site_url)
        return f"{parts.scheme}://{parts.netloc}{quote(self._path(folder))}"

    # -- for `certrenew check sharepoint` -------------------------------------

    def site_title(self) -> str:
        with self._translate("open the site", ""):
            web = self._ctx.web.get().select(["Title"])
            self._ctx.execute_query()
        return str(web.title)

    def library_title(self) -> str:
        try:
            with self._translate("open the library", ""):
                found = self._ctx.web.get_list(self._path("")).get().select(["Title"])
                self._ctx.execute_query()
        except _NotFound:
            raise self._no_library() from None
        return str(found.title)

    def _no_library(self) -> ArchiveError:
        return ArchiveError(
            f"the site {self._site_url} has no document library '{self._library}': set "
            f"{ENV}LIBRARY to the library's URL name (as in its address), not its title"
        )

    # -- helpers --------------------------------------------------------------

    def _path(self, folder: str, name: str | None = None) -> str:
        """Server-relative path: `/sites/<site>/<library>/<folder>[/<name>]`.

        Names SharePoint would refuse are refused here, before any request, with
        the same message as the local archive's.
        """
        whole = f"{folder}/{name}" if name else folder
        for segment in (*folder.strip("/").split("/"), *([name] if name else [])):
            if segment:
                check_archive_name(segment, whole)
        site_path = urlsplit(self._site_url).path.rstrip("/")
        rest = (p.strip("/") for p in (self._library, folder, name or ""))
        return site_path + "/" + "/".join(p for p in rest if p)

    def _file(self, folder: str, name: str) -> File:
        return self._ctx.web.get_file_by_server_relative_path(self._path(folder, name))

    @contextmanager
    def _translate(self, action: str, where: str) -> Iterator[None]:
        """The library's exceptions as the project's, naming what to fix.

        A failed call leaves the rest of its queries queued in the context, to
        run before the next call's; a fresh context (the token stays cached in
        msal) starts the next call clean.
        """
        target = f"{self.location(where) if where else self._site_url}"
        try:
            try:
                yield
            except Exception:
                self._ctx = self._connect()
                raise
        except SecurityValidationException:
            raise ArchiveError(
                f"SharePoint kept refusing the form digest to {action} {target}, even after "
                "a fresh one; the step will retry"
            ) from None
        except ClientRequestException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status == 404:
                raise _NotFound(target) from None
            if status == 401:
                raise AuthenticationError(
                    f"SharePoint refused the app's access token to {action} {target} (401): "
                    "tokens must come from the app's certificate credential for this tenant; "
                    f"check {ENV}CLIENT_ID and {ENV}TENANT_ID"
                ) from None
            if status == 403:
                raise AuthenticationError(
                    f"SharePoint did not let app {self.token_source.client_id} {action} "
                    f"{target} (403): grant the app 'write' on the site {self._site_url} "
                    f"(Sites.Selected), or fix {ENV}CLIENT_ID"
                ) from None
            raise ArchiveError(
                f"SharePoint refused to {action} {target} ({status}: {exc.message or exc.code})"
            ) from None
        except SSLError as exc:
            # An ArchiveError, not a ConfigError: the step waits for the fix (a bundle set,
            # a certificate replaced) instead of failing the renewal.
            raise ArchiveError(
                f"cannot verify the TLS certificate of {_origin(exc, self._site_url)} to "
                f"{action} {target}: set {ENV}CA_BUNDLE to the CA bundle that signs it (a "
                "private CA), or have its certificate fixed (expired, or issued for another "
                "name); the step waits"
            ) from None
        except RequestException as exc:
            raise ArchiveError(
                f"cannot {action} {target}: {type(exc).__name__}; the step will retry"
            ) from None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _origin(exc: RequestException, fallback: str) -> str:
    """Scheme, host and port the failed request went to (the site or its authority)."""
    request = exc.request
    url = urlsplit(str(request.url)) if request is not None and request.url else None
    return f"{url.scheme}://{url.netloc}" if url and url.netloc else fallback


class _NotFound(ArchiveError):
    def __init__(self, target: str) -> None:
        super().__init__(f"{target} does not exist in SharePoint")
