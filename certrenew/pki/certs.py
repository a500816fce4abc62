"""Certificate and key handling, self-contained: no Prefect, Jira or SharePoint.

Everything else in the project may use this module; it uses nothing of ours
outside certrenew.pki. Formats are recognised by content, not by file name,
because people attach `.cer` files that hold PEM and `.crt` files that hold DER.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import NameOID

from certrenew.pki.errors import CertificateError
from certrenew.pki.files import looks_like_pkcs12

PEM_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class CertificateFacts:
    """What a person (or the scan) wants to know about one certificate."""

    not_before: datetime
    not_after: datetime
    subject_cn: str | None
    sans: tuple[str, ...]
    issuer: str
    serial: str
    sha256: str
    key_type: str
    key_bits: int

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days until expiry, rounded down; negative once expired."""
        delta = self.not_after - (now or datetime.now(UTC))
        return delta.days

    def covers(self, domain: str) -> bool:
        return covers_domain(self.subject_cn, self.sans, domain)


def serial_hex(serial: int) -> str:
    """Upper-case hex, even length: the form openssl and browsers show."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _cn(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else value


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = list(ext.value.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def key_description(key: object) -> tuple[str, int]:
    """Type and size as people say them, for facts and messages: ("EC secp256r1", 256)."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}", key.curve.key_size
    return type(key).__name__.removeprefix("_").replace("PublicKey", ""), 0


def certificate_facts(cert: x509.Certificate) -> CertificateFacts:
    key_type, key_bits = key_description(cert.public_key())
    return CertificateFacts(
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subject_cn=_cn(cert.subject),
        sans=_sans(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial=serial_hex(cert.serial_number),
        sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        key_type=key_type,
        key_bits=key_bits,
    )


def _name_matches(pattern: str, domain: str) -> bool:
    pattern, domain = pattern.lower().rstrip("."), domain.lower().rstrip(".")
    if pattern == domain:
        return True
    # A wildcard stands for exactly one left-most label (RFC 6125 6.4.3).
    if pattern.startswith("*.") and "." in domain:
        return domain.split(".", 1)[1] == pattern[2:] and not domain.startswith("*.")
    return False


def covers_domain(subject_cn: str | None, sans: tuple[str, ...], domain: str) -> bool:
    """Whether a certificate with these names is valid for `domain`.

    SANs decide when present (as browsers do); the CN only counts without SANs.
    """
    names = sans if sans else ((subject_cn,) if subject_cn else ())
    return any(_name_matches(name, domain) for name in names)


def load_certificate(
    data: bytes, password: str | None = None, source: str = "data"
) -> x509.Certificate:
    """The (first) certificate in PEM, DER or PKCS#12 bytes.

    `password` is only used for PKCS#12 and never appears in an error message.
    """
    if PEM_CERT_MARKER in data:
        try:
            return x509.load_pem_x509_certificates(data)[0]
        except ValueError:
            raise CertificateError(
                f"{source}: holds a PEM certificate block that cannot be read; "
                "it is damaged or truncated: ask for the file again"
            ) from None
    if data.lstrip().startswith(b"-----BEGIN"):
        raise CertificateError(
            f"{source}: is PEM but holds no certificate (a key or a CSR?): "
            "give the certificate file"
        )
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        pass
    return _load_pkcs12(data, password, source)


def _load_pkcs12(data: bytes, password: str | None, source: str) -> x509.Certificate:
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
    return bundle.cert.certificate
