"""Step 4 rules: the certificate the CA sent, checked against the renewal's key and domain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certrenew.pki.certs import certificate_facts
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import public_key_fingerprint
from certrenew.pki.issued import IssuedCertificate, check_issued_certificate
from tests.pki import (
    DOMAIN,
    TestCA,
    der,
    ec_key,
    ed25519_key,
    key_pem,
    make_cert,
    make_csr,
    pem,
    rsa_key,
)

MAX_DAYS = 200


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="module")
def leaf(ca: TestCA) -> x509.Certificate:
    return ca.issue(rsa_key(2048).public_key())


KEY = public_key_fingerprint(rsa_key(2048).public_key())


def check(data: bytes, **changes: Any) -> IssuedCertificate:
    arguments: dict[str, Any] = {
        "key_fingerprint": KEY,
        "domain": DOMAIN,
        "max_lifetime_days": MAX_DAYS,
    }
    arguments.update(changes)
    return check_issued_certificate(data, **arguments)


def refusal(data: bytes, **changes: Any) -> str:
    with pytest.raises(CertificateError) as caught:
        check(data, **changes)
    return str(caught.value)


# --- accepted forms -----------------------------------------------------------------------


def test_leaf_alone_in_pem_and_der(leaf: x509.Certificate) -> None:
    for data in (pem(leaf), der(leaf)):
        issued = check(data)
        assert issued.leaf_pem == pem(leaf)
        assert issued.chain_pem == b""
        assert issued.facts == certificate_facts(leaf)


@pytest.mark.parametrize(
    "order", [("leaf", "intermediate", "root"), ("root", "intermediate", "leaf")]
)
def test_chain_in_one_pem_in_any_order(
    ca: TestCA, leaf: x509.Certificate, order: tuple[str, ...]
) -> None:
    certs = {"leaf": leaf, "intermediate": ca.intermediate, "root": ca.root}
    issued = check(pem(*(certs[name] for name in order)))
    assert issued.leaf_pem == pem(leaf)
    assert issued.chain_pem == pem(ca.intermediate, ca.root)


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_pkcs7_bundle(ca: TestCA, leaf: x509.Certificate, encoding: serialization.Encoding) -> None:
    bundle = pkcs7.serialize_certificates([ca.root, leaf, ca.intermediate], encoding)
    issued = check(bundle)
    assert issued.leaf_pem == pem(leaf)
    assert issued.chain_pem == pem(ca.intermediate, ca.root)


def test_chain_given_apart_may_repeat_the_leaf(ca: TestCA, leaf: x509.Certificate) -> None:
    issued = check(der(leaf), chain=pem(leaf, ca.intermediate))
    assert issued.chain_pem == pem(ca.intermediate)


def test_wildcard_covers_one_label(ca: TestCA) -> None:
    wildcard = ca.issue(rsa_key(2048).public_key(), cn="*.example.cat", sans=("*.example.cat",))
    assert check(pem(wildcard)).facts.sans == ("*.example.cat",)
    message = refusal(pem(wildcard), domain="a.seu.example.cat")
    assert "does not cover a.seu.example.cat: it is for *.example.cat" in message


@pytest.mark.parametrize(
    "key",
    [lambda: rsa_key(3072), lambda: ec_key("P-256"), lambda: ec_key("P-384")],
    ids=["rsa3072", "p256", "p384"],
)
def test_other_strong_keys(
    ca: TestCA, key: Callable[[], rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]
) -> None:
    public = key().public_key()
    issued = check(pem(ca.issue(public)), key_fingerprint=public_key_fingerprint(public))
    assert issued.facts.key_bits >= 256


def test_lifetime_at_the_limit_and_slightly_early_start(ca: TestCA) -> None:
    soon = datetime.now(UTC) + timedelta(hours=6)
    cert = ca.issue(rsa_key(2048).public_key(), not_before=soon, days=MAX_DAYS)
    assert check(pem(cert)).facts.not_before == cert.not_valid_before_utc


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "an empty file"),
        (b"please find the certificate attached", "neither PEM nor readable DER"),
        (b"\x30\x82\x02\x00" + b"\x00" * 40, "neither PEM nor readable DER"),
    ],
)
def test_garbage(data: bytes, words: str) -> None:
    message = refusal(data)
    assert "is not a certificate" in message
    assert words in message


def test_truncated_pem(leaf: x509.Certificate) -> None:
    data = pem(leaf)
    assert "damaged or truncated" in refusal(data[: len(data) // 2])


def test_truncated_chain_block(ca: TestCA, leaf: x509.Certificate) -> None:
    data = pem(leaf, ca.intermediate)
    assert "damaged or truncated" in refusal(data[:-200] + b"\n-----END CERTIFICATE-----\n")


def test_truncated_pkcs7(ca: TestCA, leaf: x509.Certificate) -> None:
    bundle = pkcs7.serialize_certificates([leaf, ca.intermediate], serialization.Encoding.DER)
    assert "damaged, truncated" in refusal(bundle[:-100])
    bundle = pkcs7.serialize_certificates([leaf, ca.intermediate], serialization.Encoding.PEM)
    assert "PKCS#7 bundle that cannot be read" in refusal(bundle[: len(bundle) // 2])


def test_truncated_der(leaf: x509.Certificate) -> None:
    assert "damaged, truncated" in refusal(der(leaf)[:-100])


def test_csr_instead_of_certificate() -> None:
    assert "it is a CSR" in refusal(make_csr(rsa_key(2048)))


def test_pkcs12_instead_of_certificate(ca: TestCA) -> None:
    enc = serialization.BestAvailableEncryption(b"pw")
    p12 = pkcs12.serialize_key_and_certificates(b"x", ca.root_key, ca.root, None, enc)
    assert "it is a PKCS#12 bundle" in refusal(p12)


def test_key_beside_the_certificate(leaf: x509.Certificate) -> None:
    message = refusal(pem(leaf) + key_pem(rsa_key(2048)))
    assert "holds a private key beside the certificate" in message


def test_key_does_not_match(ca: TestCA) -> None:
    other = ca.issue(rsa_key(2048, n=1).public_key())
    message = refusal(pem(other, ca.intermediate))
    assert "does not match the key from the CSR ticket" in message
    assert "certificate issued from that CSR" in message
    assert KEY[:16] in message


def test_does_not_cover_the_domain(ca: TestCA) -> None:
    cert = ca.issue(
        rsa_key(2048).public_key(), cn="www.example.cat", sans=("www.example.cat", "example.cat")
    )
    message = refusal(pem(cert))
    assert "does not cover seu.example.cat: it is for www.example.cat, example.cat" in message


def test_cn_only_certificate_names_its_cn(ca: TestCA) -> None:
    cert = ca.issue(rsa_key(2048).public_key(), cn="altre.example.cat", sans=None)
    assert "it is for CN=altre.example.cat" in refusal(pem(cert))


def test_expired(ca: TestCA) -> None:
    start = datetime.now(UTC) - timedelta(days=100)
    cert = ca.issue(rsa_key(2048).public_key(), not_before=start, days=90)
    message = refusal(pem(cert))
    assert f"expired on {(start + timedelta(days=90)):%Y-%m-%d}" in message


def test_expiry_is_judged_at_the_given_time(leaf: x509.Certificate) -> None:
    later = leaf.not_valid_after_utc + timedelta(seconds=1)
    assert "expired on" in refusal(pem(leaf), now=later)


def test_not_yet_valid(ca: TestCA) -> None:
    start = datetime.now(UTC) + timedelta(days=2)
    cert = ca.issue(rsa_key(2048).public_key(), not_before=start)
    message = refusal(pem(cert))
    assert f"only valid from {start:%Y-%m-%d %H:%M} UTC, more than a day ahead" in message


def test_lifetime_of_400_days(ca: TestCA) -> None:
    cert = ca.issue(rsa_key(2048).public_key(), days=400)
    message = refusal(pem(cert))
    assert "valid for 400 days, longer than the 200 days allowed" in message
    assert "CA/Browser Forum" in message


def test_weak_rsa_key(ca: TestCA) -> None:
    weak = rsa_key(1024).public_key()
    message = refusal(pem(ca.issue(weak)), key_fingerprint=public_key_fingerprint(weak))
    assert "RSA 1024 bits, below the minimum of 2048 bits" in message


def test_ed25519_key(ca: TestCA) -> None:
    public = ed25519_key().public_key()
    message = refusal(pem(ca.issue(public)), key_fingerprint=public_key_fingerprint(public))
    assert "key type Ed25519 is not accepted" in message


def test_chain_from_another_ca(leaf: x509.Certificate) -> None:
    foreign = TestCA(n=1)
    message = refusal(pem(leaf, foreign.intermediate))
    assert "chain does not link" in message
    assert "Test Issuing CA 1" in message


def test_chain_missing_its_intermediate(ca: TestCA, leaf: x509.Certificate) -> None:
    message = refusal(pem(leaf, ca.root))
    assert "chain does not link: 'CN=Test Root 0' did not issue 'CN=seu.example.cat'" in message


def test_intermediate_with_the_right_name_but_another_key(
    ca: TestCA, leaf: x509.Certificate
) -> None:
    impostor = make_cert(
        ec_key("P-256", n=999).public_key(),
        issuer_key=ca.root_key,
        issuer=ca.root.subject,
        cn="Test Issuing CA 0",
        sans=None,
        ca=True,
    )
    assert impostor.subject == ca.intermediate.subject
    bundle = pkcs7.serialize_certificates([leaf, impostor, ca.root], serialization.Encoding.PEM)
    message = refusal(bundle)
    assert "is not signed by that certificate" in message


def test_broken_chain_given_apart(ca: TestCA, leaf: x509.Certificate) -> None:
    assert "chain does not link" in refusal(pem(leaf), chain=pem(TestCA(n=1).root))


# --- secrets ------------------------------------------------------------------------------


def test_no_message_carries_a_line_of_the_private_key(leaf: x509.Certificate) -> None:
    key_file = key_pem(rsa_key(2048))
    messages = [
        refusal(key_file),
        refusal(key_file[: len(key_file) // 2]),
        refusal(pem(leaf) + key_file),
        refusal(key_file + pem(leaf)),
        refusal(pem(leaf), chain=key_file),
    ]
    lines = [line for line in key_file.decode().splitlines() if line.strip()]
    for message in messages:
        for line in lines:
            assert line not in message
