"""Every way the archive's conversation with Entra and SharePoint goes wrong, end to end."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msal
import pytest
from office365.sharepoint.client_context import ClientContext

from certrenew.adapters.archive import store_file
from certrenew.adapters.archive.sharepoint import SharePointArchive
from certrenew.adapters.archive.sharepoint.auth import site_scope
from certrenew.adapters.archive.sharepoint.http import PatientSession
from certrenew.errors import (
    ArchiveError,
    AuthenticationError,
    CertRenewError,
    ConfigError,
    ServiceUnavailable,
)
from certrenew.lab.sharepoint_server import Request
from certrenew.retry import RetryPolicy
from tests.contract.archive_contract import FOLDER
from tests.fixtures_sharepoint import CLIENT_ID, LIBRARY, SharePointTestbed, make_app_credential


def _fails(archive: SharePointArchive) -> CertRenewError:
    with pytest.raises(CertRenewError) as caught:
        store_file(archive, FOLDER, "seu.example.cat.crt", b"crt")
    return caught.value


# -- the authority -----------------------------------------------------------------


def test_wrong_tenant_names_the_tenant_setting(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive(authority=f"{sharepoint.authority.origin}/another-tenant")
    error = _fails(archive)
    assert isinstance(error, AuthenticationError)
    assert "CERTRENEW_SHAREPOINT__TENANT_ID" in str(error)


def test_unknown_client_names_the_client_id_setting(sharepoint: SharePointTestbed) -> None:
    error = _fails(sharepoint.archive(client_id="00000000-0000-0000-0000-000000000bad"))
    assert isinstance(error, AuthenticationError)
    assert "00000000-0000-0000-0000-000000000bad" in str(error)
    assert "CERTRENEW_SHAREPOINT__CLIENT_ID" in str(error)


def test_unregistered_certificate_is_named_by_thumbprint(
    sharepoint: SharePointTestbed, tmp_path: Path
) -> None:
    other = make_app_credential().write(tmp_path / "other.pem")
    archive = sharepoint.archive(cert_path=other)
    error = _fails(archive)
    assert isinstance(error, AuthenticationError)
    assert "not registered" in str(error)
    assert archive.token_source.certificate.thumbprint in str(error)
    assert not sharepoint.authority.verified_assertions


def test_credential_expired_in_the_registration(sharepoint: SharePointTestbed) -> None:
    sharepoint.authority.register(
        CLIENT_ID,
        sharepoint.credential.certificate,
        credential_end=datetime.now(UTC) - timedelta(days=1),
    )
    error = _fails(sharepoint.archive())
    assert isinstance(error, AuthenticationError)
    assert "expired" in str(error)
    assert "CERTRENEW_SHAREPOINT__CERT_PATH" in str(error)


def test_expired_app_certificate_is_caught_before_asking(
    sharepoint: SharePointTestbed, tmp_path: Path
) -> None:
    expired = make_app_credential(expired=True)
    sharepoint.authority.register(CLIENT_ID, expired.certificate)
    error = _fails(sharepoint.archive(cert_path=expired.write(tmp_path / "old.pem")))
    assert isinstance(error, AuthenticationError)
    assert "expired on" in str(error)
    assert not sharepoint.authority.requests("POST", "/token")


def test_encrypted_app_key_needs_its_password(
    sharepoint: SharePointTestbed, tmp_path: Path
) -> None:
    locked = make_app_credential(password="app-key-pass-5150")
    sharepoint.authority.register(CLIENT_ID, locked.certificate)
    path = locked.write(tmp_path / "locked.pem")
    with pytest.raises(ConfigError, match="CERTRENEW_SHAREPOINT__CERT_PASSWORD"):
        sharepoint.archive(cert_path=path)
    with pytest.raises(ConfigError, match=r"password .* is wrong"):
        sharepoint.archive(cert_path=path, cert_password="not-it")
    password_file = tmp_path / "cert-password"
    password_file.write_text("app-key-pass-5150\n")
    archive = sharepoint.archive(cert_path=path, cert_password_file=password_file)
    store_file(archive, FOLDER, "a.crt", b"1")
    assert sharepoint.authority.verified_assertions


def test_missing_settings_are_listed_with_their_variables(sharepoint: SharePointTestbed) -> None:
    with pytest.raises(ConfigError) as caught:
        sharepoint.archive(site_url=None, client_id=None)
    assert "CERTRENEW_SHAREPOINT__SITE_URL" in str(caught.value)
    assert "CERTRENEW_SHAREPOINT__CLIENT_ID" in str(caught.value)


def test_untrusted_tls_names_the_ca_bundle_setting(sharepoint: SharePointTestbed) -> None:
    error = _fails(sharepoint.archive(ca_bundle=None))
    assert isinstance(error, ArchiveError)  # the step waits for the fix; the run goes on after
    assert "CERTRENEW_SHAREPOINT__CA_BUNDLE" in str(error)
    assert sharepoint.authority.origin in str(error)  # the first one asked: the authority


# -- SharePoint refusals -------------------------------------------------------------


def test_secret_based_token_is_refused_by_sharepoint(sharepoint: SharePointTestbed) -> None:
    """Why the archive uses a certificate: Entra issues the token, SharePoint refuses it."""
    secret = "client-secret-value-31337"
    sharepoint.authority.register(CLIENT_ID, secret=secret)
    session = PatientSession(RetryPolicy(1), verify=str(sharepoint.ca_bundle))
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        authority=sharepoint.authority.authority_url,
        client_credential=secret,
        instance_discovery=False,
        http_client=session,
    )
    token = app.acquire_token_for_client(scopes=[site_scope(sharepoint.site.site_url)])
    assert "access_token" in token
    context = (
        ClientContext(sharepoint.site.site_url)
        .with_access_token(lambda: token)
        .with_transport(session=session)
    )
    archive = SharePointArchive(
        lambda: context, sharepoint.site.site_url, LIBRARY, 1024, sharepoint.archive().token_source
    )
    error = _fails(archive)
    assert isinstance(error, AuthenticationError)
    assert "(401)" in str(error)
    assert "certificate credential" in str(error)
    assert sharepoint.site.requests()[-1].status == 401


def test_no_site_grant_asks_for_sites_selected(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.grants.clear()
    error = _fails(sharepoint.archive())
    assert isinstance(error, AuthenticationError)
    assert "(403)" in str(error)
    assert "Sites.Selected" in str(error)
    assert CLIENT_ID in str(error)


def test_read_only_grant_fails_at_the_first_write(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.grant(CLIENT_ID, "read")
    archive = sharepoint.archive()
    assert archive.list_files(FOLDER) == []
    error = _fails(archive)
    assert isinstance(error, AuthenticationError)
    assert "'write'" in str(error)


def test_unauthorized_names_the_app_settings(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(401, when=lambda r: "contextinfo" not in r.path.lower())
    error = _fails(sharepoint.archive())
    assert isinstance(error, AuthenticationError)
    assert "CERTRENEW_SHAREPOINT__CLIENT_ID" in str(error)


def test_other_refusals_are_archive_errors(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(400, when=lambda r: "/files/add(" in r.path.lower())
    error = _fails(sharepoint.archive())
    assert type(error) is ArchiveError
    assert "upload" in str(error)


def test_expired_form_digest_is_refreshed_once(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive()
    archive.ensure_folder(FOLDER)
    sharepoint.site.expire_digests()
    store_file(archive, FOLDER, "seu.example.cat.crt", b"crt")

    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/seu.example.cat.crt") == b"crt"
    assert len(sharepoint.site.requests("POST", "/contextinfo")) == 2
    assert [r.status for r in sharepoint.site.requests("POST", "/files/add(")] == [403, 200]


# -- throttling and outages ------------------------------------------------------------


def _is_upload(request: Request) -> bool:
    return "/files/add(" in request.path.lower()


def test_throttling_waits_as_long_as_retry_after_says(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(429, count=2, retry_after="7", when=_is_upload)
    store_file(sharepoint.archive(), FOLDER, "seu.example.cat.crt", b"crt")
    assert sharepoint.waits == [7, 7]
    assert [r.status for r in sharepoint.site.requests("POST", "/files/add(")] == [429, 429, 200]


def test_retry_after_is_capped(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(503, retry_after="3600", when=_is_upload)
    store_file(sharepoint.archive(retry_max_delay_seconds=30), FOLDER, "a.crt", b"crt")
    assert sharepoint.waits == [30]


def test_throttled_form_digest_is_retried_by_us(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(429, retry_after="2", when=lambda r: "contextinfo" in r.path.lower())
    store_file(sharepoint.archive(), FOLDER, "a.crt", b"crt")
    assert sharepoint.waits == [2]


def test_chunked_upload_survives_a_503_between_chunks(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(503, retry_after="1", when=lambda r: "continueupload" in r.path.lower())
    data = bytes(range(256)) * 12
    stored = store_file(sharepoint.archive(chunk_size=1024), FOLDER, "big.crt", data)
    assert stored.size == len(data)
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/big.crt") == data
    assert sharepoint.waits == [1]


def test_dropped_connection_is_retried_with_backoff(sharepoint: SharePointTestbed) -> None:
    sharepoint.site.inject(0, count=2, when=_is_upload)
    store_file(sharepoint.archive(), FOLDER, "a.crt", b"crt")
    assert sharepoint.waits == [1, 2]


def test_prolonged_outage_becomes_service_unavailable(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive(retry_attempts=4)
    archive.ensure_folder(FOLDER)
    sharepoint.site.outage(retry_after="10")
    error = _fails(archive)
    assert isinstance(error, ServiceUnavailable)
    assert "HTTP 503" in str(error)
    assert "keeps its state" in str(error)
    assert sharepoint.waits == [10, 10, 10]


def test_authority_outage_becomes_service_unavailable(sharepoint: SharePointTestbed) -> None:
    sharepoint.authority.outage(retry_after=None)
    error = _fails(sharepoint.archive(retry_attempts=3))
    assert isinstance(error, ServiceUnavailable)
    assert sharepoint.authority.origin in str(error)
    assert sharepoint.waits == [1, 2]


def test_unreachable_site_becomes_service_unavailable(sharepoint: SharePointTestbed) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    archive = sharepoint.archive(site_url=f"https://127.0.0.1:{closed_port}/sites/Tecnologia")
    error = _fails(archive)
    assert isinstance(error, ServiceUnavailable)
    assert "network error" in str(error)


def test_retries_are_logged_without_secrets(
    sharepoint: SharePointTestbed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="certrenew.adapters.archive.sharepoint.http")
    sharepoint.site.inject(429, retry_after="1", when=_is_upload)
    store_file(sharepoint.archive(), FOLDER, "a.crt", b"crt")
    [record] = caplog.records
    assert "HTTP 429" in record.getMessage()
    assert "retrying in 1.0 s" in record.getMessage()


def test_upload_interrupted_mid_chunks_is_redone_without_leftovers(
    sharepoint: SharePointTestbed,
) -> None:
    data = bytes(range(256)) * 12
    sharepoint.site.inject(503, count=4, when=lambda r: "continueupload" in r.path.lower())
    with pytest.raises(ServiceUnavailable):
        store_file(sharepoint.archive(chunk_size=1024), FOLDER, "big.crt", data)
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/big.crt") == b""  # what SharePoint leaves

    store_file(sharepoint.archive(chunk_size=1024), FOLDER, "big.crt", data)
    assert sorted(p.rpartition("/")[2] for p in sharepoint.site.files) == ["big.crt"]
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/big.crt") == data


def test_library_title_instead_of_url_name_is_explained(sharepoint: SharePointTestbed) -> None:
    error = _fails(sharepoint.archive(library="Tecnologia - SUPORT_TECNIC"))
    assert type(error) is ArchiveError
    assert "URL name" in str(error)
    assert "CERTRENEW_SHAREPOINT__LIBRARY" in str(error)


def test_a_failed_call_leaves_nothing_queued_for_the_next(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive(retry_attempts=1)
    sharepoint.site.inject(503, when=lambda r: "folders/add(" in r.path.lower())
    with pytest.raises(ServiceUnavailable):
        archive.ensure_folder(FOLDER)
    before = len(sharepoint.site.log)
    assert archive.list_files("CERTIFICATS") == []
    assert [
        r.method for r in sharepoint.site.log[before:] if "contextinfo" not in r.path.lower()
    ] == ["GET"]
    archive.ensure_folder(FOLDER)
    store_file(archive, FOLDER, "a.crt", b"crt")
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/a.crt") == b"crt"
