"""The app's private key, its password, access tokens and the key passphrase never surface.

Everything the archive and the check can say is collected (log records of
every logger at DEBUG, exception messages, command output, object reprs) from
successful runs and from failures, and searched for each secret.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from certrenew.adapters.archive import store_file
from certrenew.adapters.archive.renewal import RenewalRecord, archive_renewal
from certrenew.cli import app
from certrenew.errors import CertRenewError
from certrenew.pki.certs import certificate_facts
from tests.contract.archive_contract import FOLDER
from tests.fixtures_sharepoint import CLIENT_ID, SharePointTestbed, make_app_credential
from tests.test_sharepoint_renewal import _issue

CERT_PASSWORD = "cert-password-Zq81-never-shown"
KEY_PASSPHRASE = "key-passphrase-Xw44-never-shown"


@pytest.fixture
def locked(sharepoint: SharePointTestbed, tmp_path: Path) -> Path:
    """The app credential with an encrypted key, registered in place of the plain one."""
    credential = make_app_credential(password=CERT_PASSWORD)
    sharepoint.authority.register(CLIENT_ID, credential.certificate)
    sharepoint.credential = credential
    return credential.write(tmp_path / "locked.pem")


def _secrets(sharepoint: SharePointTestbed) -> list[str]:
    key_lines = sharepoint.credential.key_pem.decode().splitlines()[1:-1]
    return [CERT_PASSWORD, KEY_PASSPHRASE, *key_lines, *sharepoint.authority.tokens]


def test_nothing_secret_in_logs_messages_or_output(
    sharepoint: SharePointTestbed,
    locked: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    said: list[str] = []
    archive = sharepoint.archive(cert_path=locked, cert_password=CERT_PASSWORD)
    said += [repr(archive.token_source.certificate), repr(archive.token_source)]

    # A renewal with a protected key, throttled once on the way.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    record = RenewalRecord("seu.example.cat", certificate_facts(_issue(key, 90)))
    sharepoint.site.inject(429, retry_after="1", when=lambda r: "/files/add(" in r.path.lower())
    archive_renewal(
        archive, FOLDER, {"seu.example.cat.key": key_pem}, record, key_passphrase=KEY_PASSPHRASE
    )
    renewal_key_lines = key_pem.decode().splitlines()[1:-1]

    # Failures: expired credential, wrong password, outage.
    def failure(password: str) -> str:
        with pytest.raises(CertRenewError) as caught:
            archive = sharepoint.archive(cert_path=locked, cert_password=password)
            store_file(archive, FOLDER, "a.crt", b"x")
        return str(caught.value)

    locked_cert = sharepoint.credential.certificate
    sharepoint.authority.register(CLIENT_ID, locked_cert, credential_end=datetime.now(UTC))
    said.append(failure(CERT_PASSWORD))
    said.append(failure("wrong " + CERT_PASSWORD[:4]))
    sharepoint.authority.register(CLIENT_ID, locked_cert)
    sharepoint.site.outage()
    said.append(failure(CERT_PASSWORD))
    sharepoint.site.reset()

    # The check, through the command line, once failing and once passing.
    for key_name, value in sharepoint.env(cert_path=locked).items():
        monkeypatch.setenv(key_name, value)
    monkeypatch.setenv("CERTRENEW_SHAREPOINT__CERT_PASSWORD", CERT_PASSWORD)
    said.append(CliRunner().invoke(app, ["check", "sharepoint"]).output)
    sharepoint.site.grant(CLIENT_ID)
    sharepoint.site.add_library("SUPORT_TECNIC", "Tecnologia - SUPORT_TECNIC")
    passing = CliRunner().invoke(app, ["check", "sharepoint"])
    assert passing.exit_code == 0, passing.output
    said.append(passing.output)

    said += [record.getMessage() for record in caplog.records]
    said += [str(record.args) for record in caplog.records]
    said.append(caplog.text)  # with the tracebacks the libraries log
    text = "\n".join(said)
    assert len(caplog.records) > 10  # the libraries did log
    assert len(sharepoint.authority.tokens) >= 3
    assert "429" in text and "expired" in text and "503" in text
    for secret in [*_secrets(sharepoint), *renewal_key_lines]:
        assert secret not in text
