"""The SharePoint archive through the real msal and office365 libraries, against the local site."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from certrenew.adapters.archive import store_file
from certrenew.adapters.archive.sharepoint import SharePointArchive
from certrenew.adapters.archive.sharepoint.http import retry_after_seconds
from certrenew.adapters.wiring import build_archive
from certrenew.config import Settings
from certrenew.errors import ArchiveError
from tests.contract.archive_contract import FOLDER, ArchiveContract
from tests.fixtures_sharepoint import CLIENT_ID, LIBRARY, SharePointTestbed


class TestSharePointArchiveContract(ArchiveContract):
    @pytest.fixture
    def archive(self, sharepoint: SharePointTestbed) -> SharePointArchive:
        return sharepoint.archive()


def test_token_comes_from_a_verified_certificate_assertion(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive()
    archive.ensure_folder(FOLDER)
    archive.write_file(FOLDER, "seu.example.cat.crt", b"crt")
    archive.read_file(FOLDER, "seu.example.cat.crt")

    [claims] = sharepoint.authority.verified_assertions
    assert claims["aud"] == sharepoint.authority.token_endpoint
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    # One token serves every request until it expires.
    assert len(sharepoint.authority.requests("POST", "/token")) == 1
    [issued] = sharepoint.authority.tokens.values()
    assert issued.audience == sharepoint.site.origin


def test_small_files_go_in_one_request_large_ones_in_chunks(
    sharepoint: SharePointTestbed,
) -> None:
    archive = sharepoint.archive(chunk_size=1024)
    archive.ensure_folder(FOLDER)
    small, large = b"s" * 1024, bytes(range(256)) * 10 + b"tail"
    archive.write_file(FOLDER, "small.csr", small)
    assert not sharepoint.site.requests("POST", "startUpload")

    archive.write_file(FOLDER, "large.crt", large)
    assert len(sharepoint.site.requests("POST", "/startUpload(")) == 1
    assert len(sharepoint.site.requests("POST", "/continueUpload(")) == 1
    assert len(sharepoint.site.requests("POST", "/finishUpload(")) == 1
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/large.crt") == large
    assert archive.read_file(FOLDER, "large.crt") == large


def test_store_file_reports_what_sharepoint_holds(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive(chunk_size=1024)
    data = b"-----BEGIN CERTIFICATE-----\n" + b"A" * 3000
    stored = store_file(archive, FOLDER, "seu.example.cat.crt", data)
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.path == f"{FOLDER}/seu.example.cat.crt"


def test_storing_the_same_bytes_again_uploads_nothing(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive()
    store_file(archive, FOLDER, "seu.example.cat.crt", b"certificate")
    uploads = len(sharepoint.site.requests("POST", "/Files/add("))
    store_file(archive, FOLDER, "seu.example.cat.crt", b"certificate")
    assert len(sharepoint.site.requests("POST", "/Files/add(")) == uploads
    assert not sharepoint.site.requests("POST", "MoveToUsingPath")


def test_names_with_spaces_accents_and_apostrophes_arrive_as_written(
    sharepoint: SharePointTestbed,
) -> None:
    archive = sharepoint.archive()
    store_file(archive, FOLDER, "clau d'accés.key", b"k")
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/clau d'accés.key") == b"k"


def test_location_is_the_folder_address_in_a_browser(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive()
    assert archive.location("CERTIFICATS/CDS/CESICAT/2026/l'àrea.example.cat") == (
        f"{sharepoint.site.site_url}/{LIBRARY}/CERTIFICATS/CDS/CESICAT/2026/"
        "l%27%C3%A0rea.example.cat"
    )


def test_wiring_builds_the_sharepoint_archive_from_the_environment(
    sharepoint: SharePointTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in sharepoint.env().items():
        monkeypatch.setenv(key, value)
    setup = build_archive(Settings())
    assert isinstance(setup.archive, SharePointArchive)
    assert setup.root_folder == "CERTIFICATS/CDS"
    store_file(setup.archive, FOLDER, "seu.example.cat.crt", b"crt")
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/seu.example.cat.crt") == b"crt"


def test_retry_after_as_an_http_date() -> None:
    response = requests.Response()
    when = datetime.now(UTC) + timedelta(hours=1)
    response.headers["Retry-After"] = format_datetime(when, usegmt=True)
    assert 3000 < (retry_after_seconds(response) or 0) <= 3600
    response.headers["Retry-After"] = "soon"
    assert retry_after_seconds(response) is None


def test_reading_a_missing_file_says_which(sharepoint: SharePointTestbed) -> None:
    archive = sharepoint.archive()
    archive.ensure_folder(FOLDER)
    with pytest.raises(ArchiveError, match=r"seu\.example\.cat\.crt does not exist"):
        archive.read_file(FOLDER, "seu.example.cat.crt")
