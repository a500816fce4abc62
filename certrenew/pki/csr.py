"""Step 1 of the runbook: what makes a CSR and its private key acceptable.

Self-contained like certrenew.pki.certs: no Prefect, Jira or SharePoint. Messages
say what is wrong and what to ask for; the caller adds which ticket the file
came from. Key bytes never enter a message, only public fingerprints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from certrenew.config import CsrSettings
from certrenew.errors import CertificateError
from certrenew.pki.certs import _looks_like_pkcs12, key_description

FileKind = Literal["csr", "private_key", "certificate", "pkcs7", "pkcs12", "unknown"]

PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"}

# Which settings field must equal which subject attribute, and the words a
# person sees for it (the names openssl prints).
SUBJECT_FIELDS: tuple[tuple[str, x509.ObjectIdentifier, str], ...] = (
    ("organization", NameOID.ORGANIZATION_NAME, "Organization (O)"),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME, "Organizational Unit (OU)"),
    ("locality", NameOID.LOCALITY_NAME, "Locality (L)"),
    ("state", NameOID.STATE_OR_PROVINCE_NAME, "State (ST)"),
    ("country", NameOID.COUNTRY_NAME, "Country (C)"),
    ("email", NameOID.EMAIL_ADDRESS, "Email (emailAddress)"),
)

_EC_CURVES_BY_BITS: dict[int, ec.EllipticCurve] = {
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}

_KIND_WORDS: dict[str, str] = {
    "csr": "a CSR (certificate signing request)",
    "private_key": "a private key",
    "certificate": "a certificate",
    "pkcs7": "a PKCS#7 certificate bundle (.p7b)",
    "pkcs12": "a PKCS#12 bundle (.p12/.pfx)",
}


@dataclass(frozen=True)
class CsrFacts:
    """What the flow records about an accepted CSR (all public)."""

    domain: str
    subject: dict[str, str]
    key_type: str
    key_bits: int
    fingerprint: str


def public_key_fingerprint(public_key: PublicKeyTypes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: equal for a key, its CSR and its certificate."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def classify_file(data: bytes) -> FileKind:
    """What an attachment holds, by content: people name `.pem`, `.cer`, `.crt` freely.

    A PEM file holding a private key anywhere counts as a key, so that a
    certificate-plus-key bundle is always handled as the secret it is.
    """
    labels = PEM_LABEL.findall(data)
    if labels:
        if any(label.endswith(b"PRIVATE KEY") for label in labels):
            return "private_key"
        return _pem_kind(labels[0])
    return _der_kind(data)


def describe_file(data: bytes) -> str:
    """A few words for messages: what the person gave instead of what was asked for."""
    kind = classify_file(data)
    if kind != "unknown":
        return _KIND_WORDS[kind]
    labels = PEM_LABEL.findall(data)
    if labels:
        return f"a PEM block of type '{labels[0].decode()}'"
    if not data.strip():
        return "an empty file"
    return "neither PEM nor readable DER (damaged, truncated, or not a certificate, CSR or key)"


def _pem_kind(label: bytes) -> FileKind:
    if label in _CSR_LABELS:
        return "csr"
    if label in _CERT_LABELS:
        return "certificate"
    if label in _PKCS7_LABELS:
        return "pkcs7"
    return "unknown"


def _der_kind(data: bytes) -> FileKind:
    if not data.startswith(b"\x30"):
        return "unknown"
    probes: tuple[tuple[FileKind, Callable[[bytes], object]], ...] = (
        ("certificate", x509.load_der_x509_certificate),
        ("csr", x509.load_der_x509_csr),
        ("private_key", _probe_der_private_key),
        ("pkcs7", pkcs7.load_der_pkcs7_certificates),
    )
    for kind, load in probes:
        try:
            load(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return kind
    return "pkcs12" if _looks_like_pkcs12(data) else "unknown"


def _probe_der_private_key(data: bytes) -> None:
    try:
        serialization.load_der_private_key(data, password=None)
    except TypeError:
        return  # encrypted: still a private key


def build_csr(
    subject: CsrSettings,
    domain: str,
    key: Literal["rsa", "ec"] = "rsa",
    bits: int = 2048,
) -> tuple[bytes, bytes]:
    """A CSR and its unencrypted PKCS#8 key, as the systems team would make them.

    For EC keys `bits` picks the curve: 256, 384 or 521.
    """
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key == "rsa":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        curve = _EC_CURVES_BY_BITS.get(bits)
        if curve is None:
            raise CertificateError(
                f"no EC curve has {bits} bits: use 256, 384 or 521 for an EC key"
            )
        private_key = ec.generate_private_key(curve)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, subject.country),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, subject.state),
            x509.NameAttribute(NameOID.LOCALITY_NAME, subject.locality),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject.organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, subject.organizational_unit),
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, subject.email),
        ]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A CSR from PEM or DER; anything else is refused saying what it is instead."""
    labels = PEM_LABEL.findall(data)
    if any(label in _CSR_LABELS for label in labels):
        try:
            return x509.load_pem_x509_csr(data)
        except ValueError:
            raise CertificateError(
                "the CSR file holds a PEM CSR block that cannot be read: it is damaged or "
                "truncated; ask the systems team to attach the .csr file again"
            ) from None
    if not labels:
        try:
            return x509.load_der_x509_csr(data)
        except ValueError:
            pass
    raise CertificateError(
        f"the CSR file is not a CSR: it is {describe_file(data)}; ask the systems team "
        "for the .csr file (PEM starting with '-----BEGIN CERTIFICATE REQUEST-----', or DER)"
    )


def check_csr(csr_pem: bytes, subject: CsrSettings, domain: str) -> CsrFacts:
    """Refuse a CSR the CA would reject or that carries the wrong organisation data."""
    csr = load_csr(csr_pem)
    if not csr.is_signature_valid:
        raise CertificateError(
            "the CSR's signature is invalid (the file was altered after it was made): "
            "ask the systems team to generate the CSR again"
        )
    found_cn = _attribute(csr.subject, NameOID.COMMON_NAME)
    if found_cn is None or _dns_fold(found_cn) != _dns_fold(domain):
        raise CertificateError(
            f"the CSR's Common Name (CN) is {_shown(found_cn)}, expected '{domain}': "
            f"ask the systems team for a CSR with CN={domain}"
        )
    facts_subject = {"common_name": found_cn}
    for setting, oid, words in SUBJECT_FIELDS:
        expected: str = getattr(subject, setting)
        found = _attribute(csr.subject, oid)
        same = found is not None and (
            found.strip().casefold() == expected.casefold()
            if setting == "email"
            else found.strip() == expected
        )
        if not same:
            raise CertificateError(
                f"the CSR's {words} is {_shown(found)}, expected '{expected}' "
                f"(configured as csr.{setting}): ask the systems team for a CSR with the "
                "organisation's CSR data"
            )
        facts_subject[setting] = expected
    public_key = csr.public_key()
    problem = key_problem(
        public_key, min_rsa_bits=subject.min_rsa_bits, ec_curves=subject.ec_curves
    )
    if problem:
        raise CertificateError(f"the CSR's {problem}: ask the systems team for a new CSR and key")
    key_type, key_bits = key_description(public_key)
    return CsrFacts(
        domain=domain,
        subject=facts_subject,
        key_type=key_type,
        key_bits=key_bits,
        fingerprint=public_key_fingerprint(public_key),
    )


def key_problem(
    public_key: PublicKeyTypes,
    *,
    min_rsa_bits: int,
    ec_curves: Collection[str],
) -> str | None:
    """Why a public key is not acceptable to the CA, or None when it is."""
    allowed = f"RSA of at least {min_rsa_bits} bits or EC on {', '.join(ec_curves)}"
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < min_rsa_bits:
            return (
                f"key is RSA {public_key.key_size} bits, below the minimum of {min_rsa_bits} bits"
            )
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ec_curves:
            return f"key is EC on curve {public_key.curve.name}, which is not allowed ({allowed})"
        return None
    key_type, _ = key_description(public_key)
    return f"key type {key_type} is not accepted by the CA ({allowed})"


def load_private_key(key_pem: bytes) -> PrivateKeyTypes:
    """An unencrypted private key from PEM or DER; refusals name what was given instead."""
    labels = PEM_LABEL.findall(key_pem)
    is_pem = bool(labels)
    if is_pem and not any(label.endswith(b"PRIVATE KEY") for label in labels):
        raise _not_a_key(key_pem)
    try:
        if is_pem:
            return serialization.load_pem_private_key(key_pem, password=None)
        return serialization.load_der_private_key(key_pem, password=None)
    except TypeError:
        raise CertificateError(
            "the private key is encrypted with a passphrase: ask the systems team for the "
            "unencrypted key, or decrypt it first with "
            "'openssl pkey -in <file> -out <file>.plain' and give that file (never send the "
            "passphrase in a ticket)"
        ) from None
    except ValueError:
        if is_pem:
            raise CertificateError(
                "the key file holds a PEM private key block that cannot be read: it is "
                "damaged, truncated or of a kind not used for TLS (e.g. an OpenSSH key); "
                "ask the systems team to attach the .key file again"
            ) from None
        raise _not_a_key(key_pem) from None
    except UnsupportedAlgorithm:
        raise CertificateError(
            "the private key uses an algorithm this tool cannot read: ask the systems team "
            "for an RSA or EC key in PEM (PKCS#8) form"
        ) from None


def _not_a_key(data: bytes) -> CertificateError:
    return CertificateError(
        f"the key file is not a private key: it is {describe_file(data)}; ask the systems "
        "team for the .key file generated together with the CSR"
    )


def check_key_matches_csr(key_pem: bytes, csr_pem: bytes) -> str:
    """The shared public-key fingerprint, once the key is shown to belong to the CSR."""
    key_fingerprint = public_key_fingerprint(load_private_key(key_pem).public_key())
    csr_fingerprint = public_key_fingerprint(load_csr(csr_pem).public_key())
    if key_fingerprint != csr_fingerprint:
        raise CertificateError(
            "the private key does not belong to the CSR (public key fingerprints differ: "
            f"key {key_fingerprint[:16]}…, CSR {csr_fingerprint[:16]}…): ask the systems team "
            "for the key generated together with that CSR, or for a new pair"
        )
    return key_fingerprint


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else value


def _dns_fold(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _shown(value: str | None) -> str:
    return "missing" if value is None else f"'{value}'"
