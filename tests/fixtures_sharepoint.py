"""Fixtures: a local Entra authority and SharePoint site on loopback, and archives wired to them.

`sharepoint` gives a fresh `SharePointTestbed` per test (servers are shared by
the session and reset): a registered app with a certificate credential, a
`write` grant on the site, the library "Tecnologia - SUPORT_TECNIC" with URL
name `SUPORT_TECNIC`. `testbed.settings()` gives matching SharePointSettings
(explicit CA bundle, fast retries); `testbed.env()` the same as
CERTRENEW_SHAREPOINT__* variables for runbook tests; `testbed.archive()` a
SharePointArchive whose retry waits are recorded in `testbed.waits` instead of
slept.

For a whole-runbook test: set each of `testbed.env()` with monkeypatch, let
`certrenew.adapters.wiring.build_archive` build the archive from the loaded Settings, then
read what was archived with `testbed.site.file("SUPORT_TECNIC/<folder>/<name>")`
or the request log `testbed.site.requests(method, contains)`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certrenew.adapters.archive.sharepoint import SharePointArchive
from certrenew.config import SharePointSettings
from certrenew.lab.sharepoint_server import LocalAuthority, LocalSharePoint

TENANT_ID = "7f3c1e2a-0000-4000-8000-00000000c0de"
CLIENT_ID = "5b1d6a9e-0000-4000-8000-0000000a99e1"
LIBRARY = "SUPORT_TECNIC"
LIBRARY_TITLE = "Tecnologia - SUPORT_TECNIC"


@dataclass(frozen=True)
class AppCredential:
    """A certificate + key as the team would create for the app registration."""

    certificate: x509.Certificate
    pem: bytes  # certificate and private key, the file sharepoint.cert_path names
    key_pem: bytes

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path


def make_app_credential(password: str | None = None, expired: bool = False) -> AppCredential:
    """A fresh self-signed certificate and key, valid a year (or expired yesterday)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(days=30), now - timedelta(days=1))
        if expired
        else (now - timedelta(minutes=5), now + timedelta(days=365))
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certrenew-sharepoint")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return AppCredential(cert, cert.public_bytes(serialization.Encoding.PEM) + key_pem, key_pem)


@dataclass
class SharePointServers:
    authority: LocalAuthority
    site: LocalSharePoint
    ca_bundle: Path
    credential: AppCredential


@dataclass
class SharePointTestbed:
    """One test's view of the servers, the app credential and the settings that reach them."""

    authority: LocalAuthority
    site: LocalSharePoint
    ca_bundle: Path
    cert_path: Path
    credential: AppCredential
    waits: list[float] = field(default_factory=list)

    def settings(self, **overrides: Any) -> SharePointSettings:
        values: dict[str, Any] = {
            "site_url": self.site.site_url,
            "library": LIBRARY,
            "root_folder": "CERTIFICATS/CDS",
            "tenant_id": TENANT_ID,
            "authority": self.authority.authority_url,
            "client_id": CLIENT_ID,
            "cert_path": self.cert_path,
            "ca_bundle": self.ca_bundle,
            "retry_attempts": 4,
            "retry_max_delay_seconds": 30,
            "timeout_seconds": 10,
        }
        values.update(overrides)
        return SharePointSettings(**values)

    def env(self, **overrides: Any) -> dict[str, str]:
        """The same settings as environment variables, for tests that load Settings."""
        settings = self.settings(**overrides)
        env = {"CERTRENEW_ARCHIVE": "sharepoint"}
        for key, value in settings.model_dump(exclude_none=True).items():
            env[f"CERTRENEW_SHAREPOINT__{key.upper()}"] = str(value)
        return env

    def archive(self, **overrides: Any) -> SharePointArchive:
        return SharePointArchive.from_settings(self.settings(**overrides), sleep=self.waits.append)


@pytest.fixture(scope="session")
def sharepoint_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharePointServers]:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    contexts = []
    for _ in range(2):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(context)
        contexts.append(context)
    folder = tmp_path_factory.mktemp("sharepoint-pki")
    ca_bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    authority = LocalAuthority(contexts[0], TENANT_ID)
    site = LocalSharePoint(contexts[1], authority)
    try:
        yield SharePointServers(authority, site, ca_bundle, make_app_credential())
    finally:
        authority.close()
        site.close()


@pytest.fixture
def sharepoint(sharepoint_servers: SharePointServers, tmp_path: Path) -> SharePointTestbed:
    servers = sharepoint_servers
    servers.authority.reset()
    servers.site.reset()
    servers.authority.register(CLIENT_ID, servers.credential.certificate)
    servers.site.grant(CLIENT_ID, "write")
    servers.site.add_library(LIBRARY, LIBRARY_TITLE)
    return SharePointTestbed(
        servers.authority,
        servers.site,
        servers.ca_bundle,
        servers.credential.write(tmp_path / "sharepoint-app.pem"),
        servers.credential,
    )
