"""Local HTTPS stand-ins for Microsoft Entra (the authority) and a SharePoint site. Test code.

The real msal and office365-rest-python-client libraries talk to these on
127.0.0.1, so the archive is exercised through the same HTTP exchanges as in
production:

* `LocalAuthority` serves the OpenID configuration and the token endpoint. It
  verifies the signed client assertion the way Entra does (RS256 signature
  against the registered certificate found by its `x5t` thumbprint, audience =
  token endpoint, issuer = subject = client id, expiry) and answers refusals
  with Entra's error codes. Secret-based requests get a token, but SharePoint
  refuses such tokens, as the real one does.
* `LocalSharePoint` serves the REST endpoints the library calls (contextinfo,
  folders, files add, chunked upload, list, download, move, delete), checks the
  bearer token, the app's grant on the site (Sites.Selected) and the form
  digest, and keeps everything in memory.

Both keep a request log and take injected failures: a status (401, 403, 429,
503 ...) with Retry-After for the next matching requests, an outage, dropped
connections, answers lost or held past the client's timeout after the request
was handled, expired form digests; and both can go down (connections refused)
and come back on the same port, with another certificate if told
(certrenew.lab.listener).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certrenew.lab.listener import Listener

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;odata=verbose;charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    # After the request was handled: the answer is never sent (lost) or sent this late.
    lost: bool = False
    late_seconds: float = 0.0
    then_down: bool = False  # after a lost answer, the server goes down


DROP = Response(0)  # close the connection without answering


def json_response(status: int, payload: Any, **headers: str) -> Response:
    return Response(status, json.dumps(payload).encode(), headers=dict(headers))


@dataclass
class Injection:
    status: int  # 0: drop the connection; LOSE and STALL: handle, then lose or hold the answer
    count: int
    retry_after: str | None
    matches: Callable[[Request], bool]
    seconds: float = 0.0
    then_down: bool = False


LOSE, STALL = -1, -2


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int


class HttpsService:
    """A threaded HTTPS server on loopback with a request log and failure injection."""

    def __init__(self, server_context: ssl.SSLContext) -> None:
        self._lock = threading.RLock()
        self.log: list[LoggedRequest] = []
        self._injections: list[Injection] = []
        self.outage_retry_after: str | None = None
        self.in_outage = False
        self.server_context = server_context
        self._listener = Listener(_handler_for(self), server_context)
        self._listener.start()

    @property
    def origin(self) -> str:
        return f"https://{LOOPBACK}:{self._listener.port}"

    def close(self) -> None:
        self._listener.stop()

    def go_down(self) -> None:
        """The machine is gone: connections are refused (open ones cut) until `come_back`."""
        self._listener.stop()

    def come_back(self, tls: ssl.SSLContext | None = None) -> None:
        """Back on the same port, its state kept; `tls` is another certificate to serve."""
        self._listener.come_back(tls)

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self._injections.clear()
            self.in_outage = False
            self.outage_retry_after = None

    def inject(
        self,
        status: int,
        count: int = 1,
        retry_after: str | None = None,
        when: Callable[[Request], bool] = lambda request: True,
    ) -> None:
        """The next `count` requests for which `when` holds get `status` (0: connection dropped)."""
        with self._lock:
            self._injections.append(Injection(status, count, retry_after, when))

    def lose_answers(
        self,
        count: int = 1,
        when: Callable[[Request], bool] = lambda request: True,
        then_down: bool = False,
    ) -> None:
        """The next `count` matching requests are handled, and their answers lost.

        `then_down`: an outage starts right after, until `come_back`.
        """
        with self._lock:
            self._injections.append(Injection(LOSE, count, None, when, then_down=then_down))

    def stall(
        self,
        seconds: float,
        count: int = 1,
        when: Callable[[Request], bool] = lambda request: True,
    ) -> None:
        """The next `count` matching requests are handled, and answered `seconds` late."""
        with self._lock:
            self._injections.append(Injection(STALL, count, None, when, seconds))

    def outage(self, retry_after: str | None = "5") -> None:
        """Every request gets 503 until `reset()`."""
        with self._lock:
            self.in_outage = True
            self.outage_retry_after = retry_after

    def clear_faults(self) -> None:
        """Every injected failure and the outage lifted; the service's content kept."""
        with self._lock:
            self._injections.clear()
        self.end_outage()

    def end_outage(self) -> None:
        with self._lock:
            self.in_outage = False
            self.outage_retry_after = None

    def requests(self, method: str | None = None, contains: str = "") -> list[LoggedRequest]:
        with self._lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method) and contains.lower() in r.path.lower()
            ]

    def respond(self, request: Request) -> Response:
        with self._lock:
            injected = self._injected(request)
        if injected is not None and injected.status in (LOSE, STALL):
            handled = self.handle(request)
            response = replace(
                handled,
                lost=injected.lost,
                late_seconds=injected.late_seconds,
                then_down=injected.then_down,
            )
        else:
            response = injected or self.handle(request)
        with self._lock:
            self.log.append(LoggedRequest(request.method, request.path, response.status))
        return response

    def _injected(self, request: Request) -> Response | None:
        if self.in_outage:
            headers = {"Retry-After": self.outage_retry_after} if self.outage_retry_after else {}
            return json_response(503, {"error": "service unavailable"}, **headers)
        for injection in self._injections:
            if injection.count > 0 and injection.matches(request):
                injection.count -= 1
                if injection.status == 0:
                    return DROP
                if injection.status == LOSE:
                    return Response(LOSE, lost=True, then_down=injection.then_down)
                if injection.status == STALL:
                    return Response(STALL, late_seconds=injection.seconds)
                headers = {"Retry-After": injection.retry_after} if injection.retry_after else {}
                body = {"error": {"code": "injected", "message": {"value": "injected failure"}}}
                return json_response(injection.status, body, **headers)
        return None

    def handle(self, request: Request) -> Response:
        raise NotImplementedError


def _handler_for(service: HttpsService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the service keeps its own log."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=unquote(split.path),
                query=parse_qs(split.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = service.respond(request)
            if response is DROP or response.lost:
                self.close_connection = True
                if response.then_down:
                    service.go_down()
                return
            if response.late_seconds:
                time.sleep(response.late_seconds)
                self.close_connection = True
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


# -- the authority ---------------------------------------------------------------


@dataclass(frozen=True)
class KeyCredential:
    """A certificate uploaded to an app registration, valid until `end` (Entra lets that
    come before the certificate's own notAfter)."""

    certificate: x509.Certificate
    end: datetime


@dataclass
class AppRegistration:
    client_id: str
    credentials: list[KeyCredential] = field(default_factory=list)
    secret: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    client_id: str
    audience: str
    credential: str  # "certificate" | "secret"
    expires_at: datetime


def x5t(cert: x509.Certificate) -> str:
    """base64url SHA-1 of the DER, as in the JWT header (padding ignored when comparing)."""
    digest = hashlib.sha1(cert.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class LocalAuthority(HttpsService):
    """Entra's v2.0 endpoints for one tenant, app-only (client credentials) only."""

    def __init__(self, server_context: ssl.SSLContext, tenant_id: str) -> None:
        super().__init__(server_context)
        self.tenant_id = tenant_id
        self.apps: dict[str, AppRegistration] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.verified_assertions: list[dict[str, Any]] = []

    @property
    def authority_url(self) -> str:
        return f"{self.origin}/{self.tenant_id}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority_url}/oauth2/v2.0/token"

    def register(
        self,
        client_id: str,
        *certificates: x509.Certificate,
        secret: str | None = None,
        credential_end: datetime | None = None,
    ) -> None:
        credentials = [
            KeyCredential(c, credential_end or c.not_valid_after_utc) for c in certificates
        ]
        self.apps[client_id] = AppRegistration(client_id, credentials, secret)

    def reset(self) -> None:
        super().reset()
        self.apps.clear()
        self.tokens.clear()
        self.verified_assertions.clear()

    def handle(self, request: Request) -> Response:
        tenant, _, rest = request.path.lstrip("/").partition("/")
        if tenant != self.tenant_id:
            return _aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure "
                "you have the correct tenant ID and are signing into the correct cloud.",
            )
        if request.method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return json_response(
                200,
                {
                    "issuer": f"{self.origin}/{self.tenant_id}/v2.0",
                    "authorization_endpoint": f"{self.authority_url}/oauth2/v2.0/authorize",
                    "token_endpoint": self.token_endpoint,
                    "token_endpoint_auth_methods_supported": [
                        "private_key_jwt",
                        "client_secret_post",
                    ],
                },
            )
        if request.method == "POST" and rest == "oauth2/v2.0/token":
            return self._token({k: v[0] for k, v in parse_qs(request.body.decode()).items()})
        return json_response(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "grant type not supported")
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the "
                f"directory '{self.tenant_id}'.",
            )
        if "client_secret" in form:
            if app.secret is None or not secrets.compare_digest(app.secret, form["client_secret"]):
                return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
            return self._issue(app, form, "secret")
        if (
            form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return _aad_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain client_assertion or client_secret.",
            )
        refusal = self._verify_assertion(app, form.get("client_assertion", ""))
        return refusal or self._issue(app, form, "certificate")

    def _verify_assertion(self, app: AppRegistration, assertion: str) -> Response | None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            return _aad_error(401, "invalid_client", 50027, "Invalid JWT token.")
        thumb = str(header.get("x5t", "")).rstrip("=")
        credential = next((c for c in app.credentials if x5t(c.certificate) == thumb), None)
        if credential is None:
            return _aad_error(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key was not "
                f"found., Thumbprint of key used by client: '{thumb}']",
            )
        if credential.end <= datetime.now(UTC):
            return _aad_error(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key used is "
                f"expired., Thumbprint of key used by client: '{thumb}']",
            )
        try:
            claims = jwt.decode(
                assertion,
                # An app credential's certificate holds an RSA key (RS256 above); cryptography
                # types public_key() as any key type, DSA and X25519 included, which jwt refuses.
                credential.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=self.token_endpoint,
                issuer=app.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return _aad_error(
                401,
                "invalid_client",
                700027,
                f"Client assertion contains an invalid signature. [Reason - {type(exc).__name__}]",
            )
        if claims.get("sub") != app.client_id or header.get("alg") != "RS256":
            return _aad_error(
                401,
                "invalid_client",
                700023,
                "Client assertion audience or subject claim does not match.",
            )
        self.verified_assertions.append(claims)
        return None

    def _issue(self, app: AppRegistration, form: dict[str, str], credential: str) -> Response:
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return _aad_error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope "
                f"{scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier.",
            )
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = IssuedToken(
                app.client_id,
                scope.removesuffix("/.default"),
                credential,
                datetime.now(UTC) + timedelta(hours=1),
            )
        return json_response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )


def _aad_error(status: int, error: str, code: int, description: str) -> Response:
    trace = uuid.uuid4()
    return json_response(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(trace),
        },
    )


# -- SharePoint ------------------------------------------------------------------


def _sp_error(status: int, code: str, message: str) -> Response:
    return json_response(
        status, {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}
    )


ACCESS_DENIED = ("-2147024891, System.UnauthorizedAccessException", "Access denied.")
NOT_FOUND = ("-2147024894, System.IO.FileNotFoundException", "File Not Found.")
BAD_DIGEST = (
    "-2130575251, Microsoft.SharePoint.SPException",
    "The security validation for this page is invalid and might be corrupted. Please use your "
    "web browser's Back button to try your operation again.",
)
FILE_EXISTS = (
    "-2130575257, Microsoft.SharePoint.SPException",
    "A file with this name already exists.",
)

# `Name('literal')` and `Name(key='literal',key2=0)` in OData URLs; '' escapes a quote.
_CALL = re.compile(r"^(?P<name>[A-Za-z$]+)(?:\((?P<args>(?:[^()']|'(?:[^']|'')*')*)\))?$")
_ARG = re.compile(r"(?:(?P<key>\w+)=)?(?:'(?P<text>(?:[^']|'')*)'|(?P<raw>[^,']+))")


def _segments(path: str) -> list[tuple[str, dict[str, str]]]:
    """`getFolderByServerRelativePath(DecodedUrl='/a/b')/Files/add(url='x',overwrite=true)`."""
    parts: list[str] = []
    depth, quoted, current = 0, False, ""
    for ch in path:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "/" and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    calls: list[tuple[str, dict[str, str]]] = []
    for part in filter(None, parts):
        match = _CALL.match(part)
        if match is None:
            raise ValueError(part)
        args: dict[str, str] = {}
        for index, arg in enumerate(_ARG.finditer(match.group("args") or "")):
            value = arg.group("text")
            value = value.replace("''", "'") if value is not None else arg.group("raw")
            args[(arg.group("key") or str(index)).lower()] = value
        calls.append((match.group("name").lower(), args))
    return calls


def _next_is_add(rest: list[tuple[str, dict[str, str]]]) -> bool:
    return len(rest) >= 2 and rest[1][0] == "add"


class LocalSharePoint(HttpsService):
    """One site with document libraries, in memory, behind app-only bearer tokens."""

    def __init__(
        self, server_context: ssl.SSLContext, authority: LocalAuthority, site: str = "Tecnologia"
    ) -> None:
        super().__init__(server_context)
        self.authority = authority
        self.site_path = f"/sites/{site}"
        self.site_title = site
        self.libraries: dict[str, str] = {}
        self.folders: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.grants: dict[str, str] = {}
        self.digests: set[str] = set()
        self._uploads: dict[str, tuple[str, bytearray]] = {}

    @property
    def site_url(self) -> str:
        return self.origin + self.site_path

    def add_library(self, url_name: str, title: str) -> None:
        self.libraries[url_name] = title
        self.folders.add(f"{self.site_path}/{url_name}")

    def grant(self, client_id: str, role: str = "write") -> None:
        """What `Sites.Selected` + a site permission does in the real tenant."""
        self.grants[client_id] = role

    def expire_digests(self) -> None:
        with self._lock:
            self.digests.clear()

    def reset(self) -> None:
        super().reset()
        self.libraries.clear()
        self.folders.clear()
        self.files.clear()
        self.grants.clear()
        self.digests.clear()
        self._uploads.clear()

    def file(self, path: str) -> bytes:
        """A file by its path below the site, e.g. `SUPORT_TECNIC/CERTIFICATS/x.crt`."""
        return self.files[f"{self.site_path}/{path}"]

    def handle(self, request: Request) -> Response:
        refusal = self._authorize(request)
        if refusal is not None:
            return refusal
        prefix = f"{self.site_path}/_api/"
        if not request.path.startswith(prefix):
            return _sp_error(404, *NOT_FOUND)
        try:
            calls = _segments(request.path[len(prefix) :])
        except ValueError:
            return _sp_error(
                400,
                "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                "The expression is not valid.",
            )
        if calls[0][0] == "contextinfo" and request.method == "POST":
            return self._contextinfo()
        if request.method == "POST":
            if request.headers.get("x-requestdigest") not in self.digests:
                return _sp_error(403, *BAD_DIGEST)
            if self.grants.get(self._client(request)) != "write":
                return _sp_error(403, *ACCESS_DENIED)
        with self._lock:
            return self._route(request, calls)

    def _client(self, request: Request) -> str:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self.authority.tokens[token].client_id

    def _authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        issued = (
            self.authority.tokens.get(header.removeprefix("Bearer "))
            if header.startswith("Bearer ")
            else None
        )
        if issued is None or issued.expires_at <= datetime.now(UTC):
            return json_response(
                401,
                {"error_description": "Invalid JWT token."},
                **{"WWW-Authenticate": 'Bearer realm=""'},
            )
        if issued.audience != self.origin:
            return json_response(401, {"error_description": "Invalid audience Uri."})
        if issued.credential != "certificate":
            return json_response(401, {"error_description": "Unsupported app only token."})
        if issued.client_id not in self.grants:
            return _sp_error(403, *ACCESS_DENIED)
        return None

    def _contextinfo(self) -> Response:
        digest = f"0x{secrets.token_hex(32).upper()},{datetime.now(UTC):%d %b %Y %H:%M:%S} -0000"
        with self._lock:
            self.digests.add(digest)
        return json_response(
            200,
            {
                "d": {
                    "GetContextWebInformation": {
                        "__metadata": {"type": "SP.ContextWebInformation"},
                        "FormDigestTimeoutSeconds": 1800,
                        "FormDigestValue": digest,
                        "LibraryVersion": "16.0.0.0",
                        "SiteFullUrl": self.site_url,
                        "WebFullUrl": self.site_url,
                    }
                }
            },
        )

    # -- REST routes ---------------------------------------------------------

    def _route(self, request: Request, calls: list[tuple[str, dict[str, str]]]) -> Response:
        name, args = calls[0]
        rest = calls[1:]
        if name == "web" and not rest:
            return self._ok(
                {
                    "__metadata": {"type": "SP.Web"},
                    "Title": self.site_title,
                    "Url": self.site_url,
                    "ServerRelativeUrl": self.site_path,
                }
            )
        if name == "web" and rest:
            name, args = rest[0]
            rest = rest[1:]
        if name == "getlist":
            path = args.get("0", "")
            url_name = path.removeprefix(self.site_path + "/")
            if url_name not in self.libraries:
                return _sp_error(404, *NOT_FOUND)
            return self._ok({"__metadata": {"type": "SP.List"}, "Title": self.libraries[url_name]})
        if name == "getfolderbyserverrelativepath":
            return self._folder_route(request, args["decodedurl"], rest)
        if name == "getfilebyserverrelativepath":
            return self._file_route(request, args["decodedurl"], rest)
        if name == "getfilebyserverrelativeurl":
            return self._file_route(request, args["0"], rest)
        return _sp_error(404, *NOT_FOUND)

    def _folder_route(
        self, request: Request, folder: str, rest: list[tuple[str, dict[str, str]]]
    ) -> Response:
        # `Folders('a')` walks down, `Folders/Add('b')` creates (or finds) a child: what
        # ensure_by_path sends, one request per path segment.
        while rest and rest[0][0] == "folders" and (rest[0][1] or _next_is_add(rest)):
            if folder not in self.folders:
                return _sp_error(404, *NOT_FOUND)
            if rest[0][1]:
                folder, rest = f"{folder}/{rest[0][1]['0']}", rest[1:]
                continue
            folder, rest = f"{folder}/{rest[1][1]['0']}", rest[2:]
            self.folders.add(folder)
            if not rest:
                return self._ok(self._folder_json(folder))
        if folder not in self.folders:
            return _sp_error(404, *NOT_FOUND)
        if not rest:
            return self._ok(self._folder_json(folder))
        if rest[0][0] == "files" and len(rest) == 1 and request.method == "GET":
            names = sorted(p for p in self.files if p.rpartition("/")[0] == folder)
            return self._ok({"results": [self._file_json(p) for p in names]})
        if rest[0][0] == "files" and len(rest) == 2 and rest[1][0] == "add":
            args = rest[1][1]
            path = f"{folder}/{args['url']}"
            if path in self.files and args.get("overwrite", "false").lower() != "true":
                return _sp_error(400, *FILE_EXISTS)
            self.files[path] = request.body
            return self._ok(self._file_json(path))
        return _sp_error(404, *NOT_FOUND)

    def _file_route(
        self, request: Request, path: str, rest: list[tuple[str, dict[str, str]]]
    ) -> Response:
        name, args = rest[0] if rest else ("", {})
        if name == "startupload":
            self._uploads[args["uploadid"]] = (path, bytearray(request.body))
            return self._ok({"StartUpload": str(len(request.body))})
        if name in ("continueupload", "finishupload"):
            upload = self._uploads.get(args["uploadid"])
            if upload is None or upload[0] != path or int(args["fileoffset"]) != len(upload[1]):
                return _sp_error(400, "-1, System.ArgumentException", "Invalid upload offset.")
            upload[1].extend(request.body)
            if name == "continueupload":
                return self._ok({"ContinueUpload": str(len(upload[1]))})
            del self._uploads[args["uploadid"]]
            self.files[path] = bytes(upload[1])
            return self._ok(self._file_json(path))
        if path not in self.files:
            return _sp_error(404, *NOT_FOUND)
        if name == "$value" and request.method == "GET":
            return Response(200, self.files[path], content_type="application/octet-stream")
        if name == "movetousingpath" and request.method == "POST":
            target = args["decodedurl"]
            if target in self.files and args.get("moveoperations", "0") != "1":
                return _sp_error(400, *FILE_EXISTS)
            if target.rpartition("/")[0] not in self.folders:
                return _sp_error(404, *NOT_FOUND)
            self.files[target] = self.files.pop(path)
            return self._ok({"MoveToUsingPath": None})
        if (
            not rest
            and request.method == "POST"
            and request.headers.get("x-http-method") == "DELETE"
        ):
            del self.files[path]
            return Response(200)
        if not rest and request.method == "GET":
            return self._ok(self._file_json(path))
        return _sp_error(404, *NOT_FOUND)

    def _folder_json(self, path: str) -> dict[str, Any]:
        return {
            "__metadata": {"type": "SP.Folder"},
            "Name": path.rpartition("/")[2],
            "ServerRelativeUrl": path,
            "Exists": True,
        }

    def _file_json(self, path: str) -> dict[str, Any]:
        return {
            "__metadata": {
                "type": "SP.File",
                "uri": f"{self.site_url}/_api/Web/GetFileByServerRelativePath(decodedurl='{path}')",
            },
            "Name": path.rpartition("/")[2],
            "ServerRelativeUrl": path,
            "Length": str(len(self.files.get(path, b""))),
            "Exists": True,
        }

    @staticmethod
    def _ok(payload: dict[str, Any]) -> Response:
        return json_response(200, {"d": payload})
