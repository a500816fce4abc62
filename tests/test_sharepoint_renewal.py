"""One renewal (files + manifest.json) archived in SharePoint: idempotence, no overwrite."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certrenew.adapters.archive import ArchivedFile
from certrenew.adapters.archive.renewal import (
    MANIFEST_NAME,
    RenewalRecord,
    archive_renewal,
    certificate_summary,
    manifest_bytes,
)
from certrenew.errors import ArchiveConflict
from certrenew.naming import renewal_folder
from certrenew.pki.certs import certificate_facts
from tests.fixtures_sharepoint import LIBRARY, SharePointTestbed
from tests.pki import pem_begin

DOMAIN = "seu.example.cat"
FOLDER = renewal_folder("CERTIFICATS/CDS", "CESICAT", 2026, DOMAIN)
PASSPHRASE = "key-passphrase-in-the-safe-4471"


def _issue(key: rsa.RSAPrivateKey, days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def renewal() -> tuple[dict[str, bytes], RenewalRecord]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new, old = _issue(key, 397), _issue(key, 30)
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(new.subject).sign(key, hashes.SHA256())
    )
    files = {
        f"{DOMAIN}.csr": csr.public_bytes(serialization.Encoding.PEM),
        f"{DOMAIN}.key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        f"{DOMAIN}.crt": new.public_bytes(serialization.Encoding.PEM),
    }
    record = RenewalRecord(
        domain=DOMAIN,
        new_certificate=certificate_facts(new),
        old_certificate=certificate_summary(certificate_facts(old)),
        tickets={"csr": "SIS-12", "service_owner": "ST-7", "install": "SIS-13"},
        flow_run_id="0b5c6c1e-4b7e-4c62-9d0c-3f3b8f1a2e77",
    )
    return files, record


def _uploads(sharepoint: SharePointTestbed) -> int:
    return len(sharepoint.site.requests("POST", "/files/add("))


def test_archive_stores_the_files_and_a_manifest(
    sharepoint: SharePointTestbed, renewal: tuple[dict[str, bytes], RenewalRecord]
) -> None:
    files, record = renewal
    result = archive_renewal(sharepoint.archive(), FOLDER, files, record)

    for name, data in files.items():
        assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{name}") == data
    manifest = json.loads(sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{MANIFEST_NAME}"))
    assert manifest["domain"] == DOMAIN
    assert manifest["new_certificate"]["serial"] == record.new_certificate.serial
    assert record.old_certificate
    assert manifest["old_certificate"]["serial"] == record.old_certificate["serial"]
    assert manifest["new_certificate"]["sha256_fingerprint"] == record.new_certificate.sha256
    assert manifest["new_certificate"]["not_after"].startswith("2027-02-02")
    assert manifest["tickets"] == {"csr": "SIS-12", "service_owner": "ST-7", "install": "SIS-13"}
    assert manifest["flow_run_id"] == record.flow_run_id
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == {
        f.path.rpartition("/")[2]: f.sha256 for f in result.files
    }
    assert result.location == f"{sharepoint.site.site_url}/{LIBRARY}/{FOLDER}"


def test_manifest_holds_no_key_material(
    renewal: tuple[dict[str, bytes], RenewalRecord], sharepoint: SharePointTestbed
) -> None:
    files, record = renewal
    archive_renewal(sharepoint.archive(), FOLDER, files, record)
    manifest = sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{MANIFEST_NAME}")
    key_pem = files[f"{DOMAIN}.key"]
    key_der = serialization.load_pem_private_key(key_pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert b"PRIVATE KEY" not in manifest
    for line in key_pem.splitlines()[1:-1]:
        assert line not in manifest
    assert base64.b64encode(key_der)[:40] not in manifest
    assert key_der.hex()[:40].encode() not in manifest


def test_manifest_is_deterministic(renewal: tuple[dict[str, bytes], RenewalRecord]) -> None:
    _, record = renewal
    files = [ArchivedFile("f/b.crt", 3, "bb"), ArchivedFile("f/a.csr", 2, "aa")]
    assert manifest_bytes(record, files) == manifest_bytes(record, list(reversed(files)))
    assert manifest_bytes(record, files).endswith(b"}\n")


def test_archiving_the_same_renewal_again_changes_nothing(
    sharepoint: SharePointTestbed, renewal: tuple[dict[str, bytes], RenewalRecord]
) -> None:
    files, record = renewal
    first = archive_renewal(sharepoint.archive(), FOLDER, files, record, key_passphrase=PASSPHRASE)
    uploads = _uploads(sharepoint)
    second = archive_renewal(sharepoint.archive(), FOLDER, files, record, key_passphrase=PASSPHRASE)
    assert second == first
    assert _uploads(sharepoint) == uploads
    assert not sharepoint.site.requests("POST", "MoveToUsingPath")
    names = sorted(p.rpartition("/")[2] for p in sharepoint.site.files)
    assert names == sorted([*files, MANIFEST_NAME])


def test_a_new_run_archiving_the_same_renewal_keeps_the_first_manifest(
    sharepoint: SharePointTestbed, renewal: tuple[dict[str, bytes], RenewalRecord]
) -> None:
    """A run killed after archiving is followed by a new run (kill point
    after:write_file:manifest.json): same files, another run id, nothing set aside."""
    files, record = renewal
    archive_renewal(sharepoint.archive(), FOLDER, files, record, key_passphrase=PASSPHRASE)
    manifest = sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{MANIFEST_NAME}")
    next_run = replace(record, flow_run_id="5d0f8a52-1c2b-4e0e-8f3a-6b7c8d9e0f11")
    archive_renewal(sharepoint.archive(), FOLDER, files, next_run, key_passphrase=PASSPHRASE)
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{MANIFEST_NAME}") == manifest
    names = sorted(p.rpartition("/")[2] for p in sharepoint.site.files)
    assert names == sorted([*files, MANIFEST_NAME])


def test_archived_key_opens_only_with_the_passphrase(
    sharepoint: SharePointTestbed, renewal: tuple[dict[str, bytes], RenewalRecord]
) -> None:
    files, record = renewal
    archive_renewal(sharepoint.archive(), FOLDER, files, record, key_passphrase=PASSPHRASE)
    stored = sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{DOMAIN}.key")
    assert stored.startswith(pem_begin("ENCRYPTED PRIVATE KEY"))
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(stored, None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(stored, b"wrong passphrase")
    opened = serialization.load_pem_private_key(stored, PASSPHRASE.encode())
    original = serialization.load_pem_private_key(files[f"{DOMAIN}.key"], None)
    # Both are the renewal's RSA key; load_pem_private_key is typed for any key type.
    assert opened.private_numbers() == original.private_numbers()  # type: ignore[union-attr]


def test_a_different_certificate_keeps_the_old_files(
    sharepoint: SharePointTestbed, renewal: tuple[dict[str, bytes], RenewalRecord]
) -> None:
    files, record = renewal
    archive_renewal(sharepoint.archive(), FOLDER, files, record)
    again = {**files, f"{DOMAIN}.crt": files[f"{DOMAIN}.crt"] + b"\n"}
    archive_renewal(sharepoint.archive(), FOLDER, again, record)

    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{DOMAIN}.old-1.crt") == files[f"{DOMAIN}.crt"]
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{DOMAIN}.crt") == again[f"{DOMAIN}.crt"]
    # The manifest records the new file's hash, so it changed too; the old one is kept.
    assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/manifest.old-1.json")


def test_refuse_mode_leaves_the_archive_untouched(
    sharepoint: SharePointTestbed, renewal: tuple[dict[str, bytes], RenewalRecord]
) -> None:
    files, record = renewal
    archive_renewal(sharepoint.archive(), FOLDER, files, record)
    before = dict(sharepoint.site.files)
    changed = {**files, f"{DOMAIN}.crt": b"another certificate"}
    with pytest.raises(ArchiveConflict) as caught:
        archive_renewal(sharepoint.archive(), FOLDER, changed, record, on_conflict="refuse")
    assert f"{DOMAIN}.crt" in str(caught.value)
    assert "keep_old" in str(caught.value)
    assert sharepoint.site.files == before
