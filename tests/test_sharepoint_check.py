"""`certrenew check sharepoint` against the local authority and site."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from typer.testing import CliRunner

from certrenew.adapters.archive.sharepoint.check import CHECK_FOLDER, check_sharepoint
from certrenew.cli import app
from tests.fixtures_sharepoint import CLIENT_ID, LIBRARY, LIBRARY_TITLE, SharePointTestbed

STEPS = [
    "configuration",
    "access token",
    "site",
    "library",
    "write probe file",
    "delete probe file",
]


def _run(sharepoint: SharePointTestbed, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Any:
    monkeypatch.delenv("CERTRENEW_CONFIG", raising=False)
    for key, value in sharepoint.env(**overrides).items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(app, ["check", "sharepoint"])


def test_all_steps_pass_and_the_probe_is_gone(
    sharepoint: SharePointTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(sharepoint, monkeypatch)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0].split(maxsplit=1)[1] for line in lines] == STEPS
    assert all(line.startswith("ok") for line in lines)
    assert f"'{LIBRARY_TITLE}'" in result.output
    thumbprint = sharepoint.credential.certificate.fingerprint(hashes.SHA1()).hex().upper()
    assert f"certificate {thumbprint}" in result.output
    [probe] = sharepoint.site.requests("POST", "/files/add(")
    assert f"/CERTIFICATS/CDS/{CHECK_FOLDER}'" in probe.path
    assert f"{sharepoint.site.site_path}/{LIBRARY}/CERTIFICATS/CDS/{CHECK_FOLDER}" in (
        sharepoint.site.folders
    )
    assert sharepoint.site.files == {}


def test_missing_grant_fails_at_the_write_and_says_why(
    sharepoint: SharePointTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    sharepoint.site.grant(CLIENT_ID, "read")
    result = _run(sharepoint, monkeypatch)
    assert result.exit_code == 1
    statuses = {
        line.split(":")[0].split(maxsplit=1)[1]: line.split()[0]
        for line in result.output.splitlines()
    }
    assert statuses == {
        "configuration": "ok",
        "access token": "ok",
        "site": "ok",
        "library": "ok",
        "write probe file": "FAILED",
        "delete probe file": "skipped",
    }
    assert "Sites.Selected" in result.output


def test_unknown_client_fails_at_the_token(
    sharepoint: SharePointTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(sharepoint, monkeypatch, client_id="00000000-0000-0000-0000-00000000dead")
    assert result.exit_code == 1
    assert "FAILED  access token: no app registration with client id" in result.output
    assert "CERTRENEW_SHAREPOINT__CLIENT_ID" in result.output
    assert result.output.count("skipped") == 4


def test_library_title_instead_of_url_name_is_explained(sharepoint: SharePointTestbed) -> None:
    results = check_sharepoint(
        sharepoint.settings(library=LIBRARY_TITLE), sleep=sharepoint.waits.append
    )
    failed = next(r for r in results if r.status == "failed")
    assert failed.step == "library"
    assert "URL name" in failed.detail
    assert "CERTRENEW_SHAREPOINT__LIBRARY" in failed.detail


def test_missing_configuration_fails_first(sharepoint: SharePointTestbed) -> None:
    results = check_sharepoint(sharepoint.settings(cert_path=None))
    assert results[0].status == "failed"
    assert "CERTRENEW_SHAREPOINT__CERT_PATH" in results[0].detail
    assert [r.status for r in results[1:]] == ["skipped"] * 5
