"""Certificate and key handling, self-contained: no Prefect, Jira or SharePoint.

Everything else in the project may use this module; it uses nothing of ours
outside certrenew.pki. Formats are recognised by content, not by file name,
because people attach `.cer` files that hold PEM and `.crt` files that hold DER.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from certrenew.pki.der import DerError
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import CERTIFICATE_LABELS, PEM_LABEL, looks_like_pkcs12
from certrenew.pki.outer import KEY_ALGORITHMS, OuterCertificate, read_outer_certificate
from certrenew.pki.served import ServedFacts, facts_of, outer_certificate
from certrenew.pki.served import covers_domain as covers_domain  # where callers look for them
from certrenew.pki.served import serial_hex as serial_hex

# A PEM boundary line; group 1 is BEGIN or END, group 2 the label.
_PEM_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 ]+)-----")


@dataclass(frozen=True, kw_only=True)
class CertificateFacts(ServedFacts):
    """The served facts plus the key, for people choosing or checking a certificate."""

    key_type: str
    key_bits: int


def key_description(key: object) -> tuple[str, int]:
    """Type and size as people say them, for facts and messages: ("EC secp256r1", 256)."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}", key.curve.key_size
    return type(key).__name__.removeprefix("_").replace("PublicKey", ""), 0


def certificate_facts(certificate: bytes | x509.Certificate) -> CertificateFacts:
    """The facts of a certificate given as DER (as load_certificate returns it) or parsed."""
    if isinstance(certificate, x509.Certificate):
        certificate = certificate.public_bytes(Encoding.DER)
    outer = outer_certificate(certificate, "the certificate")
    key_type, key_bits = _key(outer)
    return CertificateFacts(**vars(facts_of(outer)), key_type=key_type, key_bits=key_bits)


def _key(outer: OuterCertificate) -> tuple[str, int]:
    """Type and size; for a key cryptography cannot load, the algorithm's name and 0."""
    key = _public_key(outer)
    if key is None:
        return KEY_ALGORITHMS.get(outer.public_key_algorithm, outer.public_key_algorithm), 0
    return key_description(key)


def certificate_public_key(der: bytes) -> PublicKeyTypes | None:
    """The key of a certificate (DER); None when cryptography cannot load it.

    A DSA key whose parameters are left to the issuer is such a key: the
    certificate is still read, but nothing can be checked with its key.
    """
    return _public_key(outer_certificate(der, "the certificate"))


def _public_key(outer: OuterCertificate) -> PublicKeyTypes | None:
    try:
        return serialization.load_der_public_key(outer.public_key_info)
    except (ValueError, UnsupportedAlgorithm):
        return None


def pem_certificate(der: bytes) -> bytes:
    """PEM of a certificate's DER, byte for byte as cryptography and OpenSSL write it."""
    text = base64.b64encode(der)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def load_certificate(data: bytes, password: str | None = None, source: str = "data") -> bytes:
    """DER of the (first) certificate in PEM, DER or PKCS#12 bytes.

    Every PEM certificate label OpenSSL writes counts (`CERTIFICATE`, the legacy
    `X509 CERTIFICATE`, `TRUSTED CERTIFICATE`). `password` is only used for
    PKCS#12 and never appears in an error message.
    """
    if PEM_LABEL.search(data):
        return certificate_ders(data, source)[0]
    try:
        return read_outer_certificate(data).der
    except DerError:
        pass
    return _load_pkcs12(data, password, source)


def certificate_ders(data: bytes, source: str) -> list[bytes]:
    """DER of every certificate block of PEM bytes, in file order (at least one)."""
    labels = [label for label in PEM_LABEL.findall(data) if label in CERTIFICATE_LABELS]
    if not labels:
        raise CertificateError(
            f"{source}: is PEM but holds no certificate (a key or a CSR?): "
            "give the certificate file"
        )
    blocks = [body for label, body in _pem_blocks(data) if label in CERTIFICATE_LABELS]
    try:
        if len(blocks) != len(labels):
            raise ValueError("a block has no END line")
        return [
            read_outer_certificate(base64.b64decode(b"".join(body.split()), validate=True)).der
            for body in blocks
        ]
    except (ValueError, binascii.Error):
        raise CertificateError(
            f"{source}: holds a PEM certificate block that cannot be read; "
            "it is damaged or truncated: ask for the file again"
        ) from None


def _pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(label, body) of every PEM block closed by its own END line, in one pass.

    A block without its END line is left out (the caller counts them); one
    pass, because a search for each BEGIN's END would take quadratic time on
    a file of BEGIN lines.
    """
    blocks: list[tuple[bytes, bytes]] = []
    opened: tuple[bytes, int] | None = None
    for marker in _PEM_MARKER.finditer(data):
        kind, label = marker.group(1), marker.group(2)
        if kind == b"BEGIN":
            opened = (label, marker.end())
        elif opened is not None and opened[0] == label:
            blocks.append((label, data[opened[1] : marker.start()]))
            opened = None
    return blocks


def _load_pkcs12(data: bytes, password: str | None, source: str) -> bytes:
    secret = password.encode() if password is not None else None
    try:
        bundle = pkcs12.load_pkcs12(data, secret)
    except ValueError:
        if looks_like_pkcs12(data):
            if password is None:
                raise CertificateError(
                    f"{source}: is PKCS#12 and needs a password: set password_env in the "
                    "inventory and that environment variable"
                ) from None
            raise CertificateError(
                f"{source}: the PKCS#12 password is wrong (or the file is damaged): "
                "check the password in the secret store"
            ) from None
        raise CertificateError(
            f"{source}: is not a certificate in PEM, DER or PKCS#12 form: "
            "check that the right file was given"
        ) from None
    if bundle.cert is None:
        raise CertificateError(f"{source}: the PKCS#12 file holds no certificate")
    return bundle.cert.certificate.public_bytes(Encoding.DER)
