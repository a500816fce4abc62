"""The local lab the demo and tests stand on: CA, CSR signing, certificate swaps."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certrenew.errors import CertRenewError
from certrenew.lab.stack import LocalStack
from certrenew.lab.tls import LeafCertificate, LocalCA, TLSServer
from certrenew.pki.certs import certificate_facts, load_certificate
from certrenew.probe import fetch_served_certificate


def served_serial(server: TLSServer, server_name: str | None = None) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    der = asyncio.run(fetch_served_certificate(server.host, server.port, server_name, 5, context))
    return x509.load_der_x509_certificate(der).serial_number


def test_sign_csr_issues_what_was_requested(lab_ca: LocalCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "seu.lab.test"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab Org"),
                ]
            )
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("seu.lab.test"), x509.DNSName("www.lab.test")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = lab_ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM).decode(), days=397)
    cert = x509.load_pem_x509_certificate(pem)
    facts = certificate_facts(cert)
    assert cert.subject == csr.subject
    assert cert.issuer == lab_ca.certificate.subject
    assert cert.public_key() == key.public_key()
    assert facts.sans == ("seu.lab.test", "www.lab.test")
    assert 396 <= facts.days_left() <= 397
    cert.verify_directly_issued_by(lab_ca.certificate)


def test_issue_can_backdate_into_expiry_and_self_sign(lab_ca: LocalCA) -> None:
    past = datetime.now(UTC) - timedelta(days=10)
    expired = lab_ca.issue("old.lab.test", not_after=past, key_type="rsa")
    assert expired.certificate.not_valid_after_utc == past.replace(microsecond=0)
    assert expired.certificate.not_valid_before_utc < past
    own = lab_ca.issue("own.lab.test", self_signed=True)
    assert own.certificate.issuer == own.certificate.subject
    assert own.chain == ()


def test_pkcs12_and_pem_round_trip(lab_ca: LocalCA) -> None:
    leaf = lab_ca.issue("p12.lab.test", key_type="rsa")
    assert load_certificate(leaf.pkcs12("pw-1"), "pw-1") == leaf.der
    again = LeafCertificate.from_pem(leaf.chain_pem, leaf.key_pem)
    assert again.certificate == leaf.certificate and again.chain == (lab_ca.certificate,)


def test_install_swaps_the_served_certificate_at_run_time(lab_ca: LocalCA) -> None:
    old, new = lab_ca.issue("swap.lab.test"), lab_ca.issue("swap.lab.test")
    other, other_new = lab_ca.issue("b.lab.test"), lab_ca.issue("b.lab.test")
    with TLSServer(old, by_name={"b.lab.test": other}) as server:
        assert served_serial(server) == old.certificate.serial_number
        assert served_serial(server, "b.lab.test") == other.certificate.serial_number
        server.install(new)
        server.install(other_new, server_name="b.lab.test")
        assert served_serial(server, "swap.lab.test") == new.certificate.serial_number
        assert served_serial(server, "b.lab.test") == other_new.certificate.serial_number


def test_the_lab_serves_on_loopback_only(lab_ca: LocalCA) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        TLSServer(lab_ca.issue("x.lab.test"), host="0.0.0.0")


def test_a_prefect_server_that_is_not_healthy_in_time_is_stopped(tmp_path: Path) -> None:
    """`with LocalStack(...)` never reaches __exit__ when start fails: start stops it."""
    stack = LocalStack(tmp_path / "prefect", None)
    with pytest.raises(CertRenewError, match="did not answer"):
        stack.start(timeout=0.5)
    assert stack.server is not None and stack.server.proc.poll() is not None
