"""What a file holds, told by its content, and the fingerprint that ties keys together.

People name attachments `.pem`, `.cer`, `.crt` or `.key` freely, and a `.cer`
may hold PEM while a `.crt` holds DER, so every module of certrenew.pki sniffs
content with the functions here rather than trusting a file name. The public-key
fingerprint is equal for a private key, its CSR and the certificate issued from
it, which is how a renewal recognises its own files; it is public data and safe
in any message.

Standard library and `cryptography` only, like the rest of certrenew.pki.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from certrenew.pki.outer import read_outer_certificate

FileKind = Literal["csr", "private_key", "certificate", "pkcs7", "pkcs12", "unknown"]

# A PEM header line; group 1 is its label ("CERTIFICATE", "PRIVATE KEY"...).
PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
CSR_LABELS = frozenset({b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"})
# Every label OpenSSL reads a certificate under; "X509 CERTIFICATE" is the legacy one.
CERTIFICATE_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"})

_KIND_WORDS: dict[FileKind, str] = {
    "csr": "a CSR (certificate signing request)",
    "private_key": "a private key",
    "certificate": "a certificate",
    "pkcs7": "a PKCS#7 certificate bundle (.p7b)",
    "pkcs12": "a PKCS#12 bundle (.p12/.pfx)",
}


def is_private_key_label(label: bytes) -> bool:
    """Whether a PEM label is a private key's: PKCS#8, encrypted PKCS#8, RSA and EC forms."""
    return label.endswith(b"PRIVATE KEY")


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
        if any(is_private_key_label(label) for label in labels):
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


def looks_like_pkcs12(data: bytes) -> bool:
    """A DER SEQUENCE whose first element is INTEGER 3 (PFX version 3).

    Tells a PKCS#12 file that will not open (no or wrong password) from a file
    that is no PKCS#12 at all, without the password, so the message can say which.
    """
    if len(data) < 8 or data[0] != 0x30:
        return False
    length_bytes = data[1] & 0x7F if data[1] & 0x80 else 0
    offset = 2 + length_bytes
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _pem_kind(label: bytes) -> FileKind:
    if label in CSR_LABELS:
        return "csr"
    if label in CERTIFICATE_LABELS:
        return "certificate"
    if label in _PKCS7_LABELS:
        return "pkcs7"
    return "unknown"


def _der_kind(data: bytes) -> FileKind:
    """DER carries no label: try each loader in turn; PKCS#12 only by its shape.

    A certificate is recognised by its outer structure alone, as OpenSSL
    reads it, so one cryptography refuses is still called a certificate.
    """
    if not data.startswith(b"\x30"):
        return "unknown"
    probes: tuple[tuple[FileKind, Callable[[bytes], object]], ...] = (
        ("certificate", read_outer_certificate),
        ("csr", x509.load_der_x509_csr),
        ("private_key", _probe_der_private_key),
        ("pkcs7", pkcs7.load_der_pkcs7_certificates),
    )
    for kind, load in probes:
        try:
            load(data)
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion):
            continue
        return kind
    return "pkcs12" if looks_like_pkcs12(data) else "unknown"


def _probe_der_private_key(data: bytes) -> None:
    try:
        serialization.load_der_private_key(data, password=None)
    except TypeError:
        return  # encrypted: still a private key
