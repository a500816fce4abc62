"""Step 1 rules: the CSR and key the systems team attaches, checked as the CA would."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certrenew.lab.tls import build_csr
from certrenew.pki.csr import SUBJECT_FIELDS, SubjectRules, check_csr, check_key_matches_csr
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import classify_file, public_key_fingerprint
from tests.pki import (
    DOMAIN,
    SUBJECT,
    TestCA,
    der,
    ec_key,
    ed25519_key,
    key_pem,
    make_csr,
    pem,
    pem_begin,
    rsa_key,
    subject_name,
)


def refusal(csr: bytes, domain: str = DOMAIN, subject: SubjectRules = SUBJECT) -> str:
    with pytest.raises(CertificateError) as caught:
        check_csr(csr, subject, domain)
    return str(caught.value)


def key_refusal(key: bytes, csr: bytes) -> str:
    with pytest.raises(CertificateError) as caught:
        check_key_matches_csr(key, csr)
    return str(caught.value)


# --- build_csr: the systems team's part ------------------------------------------------


@pytest.mark.parametrize(("kind", "bits", "key_type"), [("rsa", 2048, "RSA"), ("ec", 256, "EC")])
def test_built_csr_passes_every_rule(kind: Literal["rsa", "ec"], bits: int, key_type: str) -> None:
    csr, key = build_csr(SUBJECT, DOMAIN, kind, bits)
    facts = check_csr(csr, SUBJECT, DOMAIN)
    assert facts.domain == DOMAIN
    assert facts.key_type.startswith(key_type)
    assert facts.key_bits == bits
    assert facts.subject["organization"] == SUBJECT.organization
    assert facts.subject["common_name"] == DOMAIN
    assert check_key_matches_csr(key, csr) == facts.fingerprint
    assert key.startswith(pem_begin("PRIVATE KEY"))  # PKCS#8, unencrypted
    loaded = serialization.load_pem_private_key(key, None)
    assert public_key_fingerprint(loaded.public_key()) == facts.fingerprint


def test_built_csr_carries_the_domain_as_san() -> None:
    from cryptography import x509

    csr = x509.load_pem_x509_csr(build_csr(SUBJECT, DOMAIN)[0])
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == [DOMAIN]


def test_build_csr_refuses_an_ec_size_without_curve() -> None:
    with pytest.raises(CertificateError, match="256, 384 or 521"):
        build_csr(SUBJECT, DOMAIN, "ec", 2048)


# --- check_csr: accepted forms -----------------------------------------------------------


def test_der_csr_is_accepted() -> None:
    csr = make_csr(rsa_key(2048), encoding=serialization.Encoding.DER)
    assert check_csr(csr, SUBJECT, DOMAIN).key_bits == 2048


def test_old_new_certificate_request_header_is_accepted() -> None:
    csr = make_csr(rsa_key(2048)).replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    assert check_csr(csr, SUBJECT, DOMAIN).domain == DOMAIN


def test_cn_compares_like_dns_names() -> None:
    csr = make_csr(rsa_key(2048), subject_name(cn="SEU.Example.CAT"))
    assert check_csr(csr, SUBJECT, DOMAIN).domain == DOMAIN


def test_email_compares_case_insensitively() -> None:
    csr = make_csr(rsa_key(2048), subject_name(email="Certificats@AOC.cat"))
    assert check_csr(csr, SUBJECT, DOMAIN).subject["email"] == SUBJECT.email


@pytest.mark.parametrize(
    ("kind", "size", "bits"),
    [("rsa", 2048, 2048), ("rsa", 3072, 3072), ("ec", "P-256", 256), ("ec", "P-384", 384)],
)
def test_allowed_keys(kind: str, size: int | str, bits: int) -> None:
    key = rsa_key(size) if kind == "rsa" else ec_key(size)
    assert check_csr(make_csr(key), SUBJECT, DOMAIN).key_bits == bits


def test_p521_is_accepted_once_configured() -> None:
    subject = replace(SUBJECT, ec_curves=("secp256r1", "secp521r1"))
    assert check_csr(make_csr(ec_key("P-521")), subject, DOMAIN).key_type == "EC secp521r1"


# --- check_csr: refusals, each with its reason --------------------------------------------


def test_private_key_instead_of_csr() -> None:
    message = refusal(key_pem(rsa_key(2048)))
    assert "not a CSR: it is a private key" in message


def test_certificate_instead_of_csr() -> None:
    ca = TestCA()
    assert "not a CSR: it is a certificate" in refusal(pem(ca.root))
    assert "not a CSR: it is a certificate" in refusal(der(ca.root))


def test_pkcs7_instead_of_csr() -> None:
    bundle = pkcs7.serialize_certificates([TestCA().root], serialization.Encoding.PEM)
    assert "it is a PKCS#7 certificate bundle" in refusal(bundle)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "an empty file"),
        (b"hello, this is not a CSR\n", "neither PEM nor readable DER"),
        (b"\x30\x82\x01\x00garbage", "neither PEM nor readable DER"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "'PUBLIC KEY'"),
    ],
)
def test_garbage_is_described(data: bytes, words: str) -> None:
    message = refusal(data)
    assert "not a CSR" in message
    assert words in message


def test_truncated_pem_csr() -> None:
    csr = make_csr(rsa_key(2048))
    message = refusal(csr[: len(csr) // 2])
    assert "damaged or truncated" in message


def test_altered_csr_fails_its_signature() -> None:
    csr = make_csr(rsa_key(2048), encoding=serialization.Encoding.DER)
    altered = csr.replace(b"Barcelona", b"Barcelonb", 1)
    assert altered != csr
    assert "signature is invalid" in refusal(altered)


def test_cn_differs_from_domain() -> None:
    message = refusal(make_csr(rsa_key(2048), subject_name(cn="www.example.cat")))
    assert "Common Name (CN) is 'www.example.cat', expected 'seu.example.cat'" in message


def test_cn_missing() -> None:
    assert "Common Name (CN) is missing" in refusal(make_csr(rsa_key(2048), subject_name(cn=None)))


@pytest.mark.parametrize(("setting", "words"), [(s, w) for s, _, w in SUBJECT_FIELDS])
def test_each_subject_field_is_checked(setting: str, words: str) -> None:
    wrong = "XX" if setting == "country" else "Something Else"
    message = refusal(make_csr(rsa_key(2048), subject_name(**{setting: wrong})))
    expected = getattr(SUBJECT, setting)
    assert f"{words} is '{wrong}', expected '{expected}'" in message
    assert f"csr.{setting}" in message


def test_missing_subject_field_is_named() -> None:
    message = refusal(make_csr(rsa_key(2048), subject_name(organizational_unit=None)))
    assert "Organizational Unit (OU) is missing" in message


def test_rsa_1024_is_too_weak() -> None:
    message = refusal(make_csr(rsa_key(1024)))
    assert "RSA 1024 bits, below the minimum of 2048 bits" in message


def test_configured_minimum_applies() -> None:
    subject = replace(SUBJECT, min_rsa_bits=3072)
    assert "below the minimum of 3072" in refusal(make_csr(rsa_key(2048)), subject=subject)


def test_p521_is_refused_unless_configured() -> None:
    message = refusal(make_csr(ec_key("P-521")))
    assert "EC on curve secp521r1, which is not allowed" in message
    assert "secp256r1, secp384r1" in message


def test_ed25519_is_refused() -> None:
    message = refusal(make_csr(ed25519_key()))
    assert "key type Ed25519 is not accepted" in message


# --- check_key_matches_csr --------------------------------------------------------------


def test_key_in_every_usual_form_matches() -> None:
    key = rsa_key(2048)
    csr = make_csr(key)
    fingerprint = public_key_fingerprint(key.public_key())
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert traditional.startswith(pem_begin("RSA PRIVATE KEY"))
    pkcs8_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for form in (key_pem(key), traditional, pkcs8_der):
        assert check_key_matches_csr(form, csr) == fingerprint


def test_ec_private_key_header_matches() -> None:
    key = ec_key("P-256")
    sec1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(pem_begin("EC PRIVATE KEY"))
    assert check_key_matches_csr(sec1, make_csr(key)) == public_key_fingerprint(key.public_key())


def test_key_of_another_csr_does_not_match() -> None:
    message = key_refusal(key_pem(rsa_key(2048, n=1)), make_csr(rsa_key(2048)))
    assert "does not belong to the CSR" in message
    assert "generated together with that CSR" in message


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [
        (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
        (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
        (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
    ],
)
def test_encrypted_key_asks_for_the_unencrypted_one(
    encoding: serialization.Encoding, fmt: serialization.PrivateFormat
) -> None:
    key = rsa_key(2048)
    encrypted = key.private_bytes(
        encoding, fmt, serialization.BestAvailableEncryption(b"secret pass")
    )
    message = key_refusal(encrypted, make_csr(key))
    assert "encrypted with a passphrase" in message
    assert "ask the systems team for the unencrypted key" in message


def test_csr_given_as_key() -> None:
    csr = make_csr(rsa_key(2048))
    assert "not a private key: it is a CSR" in key_refusal(csr, csr)


def test_garbage_given_as_key() -> None:
    csr = make_csr(rsa_key(2048))
    assert "not a private key: it is neither PEM nor readable DER" in key_refusal(
        b"\x00\x01junk", csr
    )


def test_truncated_key() -> None:
    key = key_pem(rsa_key(2048))
    message = key_refusal(key[: len(key) // 2], make_csr(rsa_key(2048)))
    assert "damaged, truncated" in message


def test_key_against_a_non_csr() -> None:
    key = rsa_key(2048)
    assert "not a CSR: it is a certificate" in key_refusal(key_pem(key), pem(TestCA().root))


# --- classify_file ----------------------------------------------------------------------


def _attachments() -> dict[str, tuple[bytes, str]]:
    key = rsa_key(2048)
    ec = ec_key("P-256")
    ca = TestCA()
    enc = serialization.BestAvailableEncryption(b"pw")
    p12 = pkcs12.serialize_key_and_certificates(b"seal", ca.root_key, ca.root, None, enc)
    return {
        "csr.pem": (make_csr(key), "csr"),
        "csr.der": (make_csr(key, encoding=serialization.Encoding.DER), "csr"),
        "new-csr.pem": (
            make_csr(key).replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"),
            "csr",
        ),
        "pkcs8.pem": (key_pem(key), "private_key"),
        "rsa.key": (
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
            "private_key",
        ),
        "ec.key": (
            ec.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
            "private_key",
        ),
        "encrypted.pem": (
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc),
            "private_key",
        ),
        "key.der": (
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "private_key",
        ),
        "encrypted.der": (
            key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, enc),
            "private_key",
        ),
        "cert+key.pem": (pem(ca.root) + key_pem(ec), "private_key"),
        "leaf.crt": (pem(ca.root), "certificate"),
        "chain.pem": (pem(ca.intermediate, ca.root), "certificate"),
        "leaf.cer": (der(ca.root), "certificate"),
        "chain.p7b": (
            pkcs7.serialize_certificates([ca.intermediate, ca.root], serialization.Encoding.PEM),
            "pkcs7",
        ),
        "chain-der.p7b": (
            pkcs7.serialize_certificates([ca.intermediate, ca.root], serialization.Encoding.DER),
            "pkcs7",
        ),
        "seal.p12": (p12, "pkcs12"),
        "public.pem": (
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "unknown",
        ),
        "notes.txt": (b"hola, aqui teniu el certificat", "unknown"),
        "empty": (b"", "unknown"),
    }


def test_classify_file_by_content() -> None:
    found = {name: classify_file(data) for name, (data, _) in _attachments().items()}
    assert found == {name: kind for name, (_, kind) in _attachments().items()}


# --- secrets ----------------------------------------------------------------------------


def test_no_message_carries_a_line_of_the_private_key() -> None:
    key = rsa_key(2048)
    key_file = key_pem(key)
    truncated = key_file[: len(key_file) * 2 // 3]
    other_csr = make_csr(rsa_key(2048, n=1))
    messages = [
        refusal(key_file),
        refusal(truncated),
        refusal(pem(TestCA().root) + key_file),
        key_refusal(key_file, other_csr),
        key_refusal(truncated, other_csr),
        key_refusal(key_file, key_file),
        key_refusal(key_file[:-40] + b"!!!!\n-----END PRIVATE KEY-----\n", other_csr),
    ]
    lines = [line for line in key_file.decode().splitlines() if line.strip()]
    for message in messages:
        for line in lines:
            assert line not in message
