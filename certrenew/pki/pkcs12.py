"""The `.p12` a CA hands out with its key (EACAT/Firmaprofessional device and seal certificates).

Self-contained like the rest of certrenew.pki. The file must open with the
password given, hold exactly one private key and, among its certificates, the
one for that key; that certificate is checked like any hand-delivered one
(names, dates, lifetime, chain). The password never enters a message.
"""

from __future__ import annotations

from collections.abc import Collection

from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from certrenew.pki.errors import CertificateError
from certrenew.pki.files import looks_like_pkcs12, public_key_fingerprint
from certrenew.pki.issued import IssuedCertificate, check_issued_certificate

# DER of the key bag types (RFC 7292): keyBag and pkcs8ShroudedKeyBag.
_KEY_BAG_OIDS = (
    bytes.fromhex("060b2a864886f70d010c0a0101"),
    bytes.fromhex("060b2a864886f70d010c0a0102"),
)


def key_bags(data: bytes) -> int:
    """How many key bags the file shows in clear.

    The library opens the first key only. Key bags sit in an unencrypted part of
    the file as every common tool writes it (the key itself is encrypted inside
    its bag), so their type identifiers can be counted without the password.
    """
    return sum(data.count(oid) for oid in _KEY_BAG_OIDS)


def check_pkcs12(
    data: bytes,
    password: str,
    *,
    domain: str,
    max_lifetime_days: int,
    issuers: Collection[str] = (),
    ca: str = "the CA",
) -> tuple[IssuedCertificate, str]:
    """The certificate the `.p12` holds for its one key, checked (as check_issued_certificate
    checks one: `issuers`, `ca`); and the key's fingerprint."""
    if not looks_like_pkcs12(data):
        raise CertificateError(
            "the file is not a PKCS#12 (.p12/.pfx) file: give the .p12 downloaded from the "
            "CA's subscriber portal"
        )
    try:
        bundle = pkcs12.load_pkcs12(data, password.encode())
    except ValueError:
        raise CertificateError(
            "the password does not open the .p12 (or the file is damaged): check the password "
            "the CA gave with it and enter it again"
        ) from None
    if bundle.key is None:
        raise CertificateError(
            "the .p12 holds no private key: download the file with its key from the CA's "
            "subscriber portal"
        )
    if key_bags(data) > 1:
        raise CertificateError(
            "the .p12 holds more than one private key: it cannot say which certificate to "
            "install; download the file of this certificate alone from the subscriber portal"
        )
    certificates = [c.certificate for c in (bundle.cert, *bundle.additional_certs) if c]
    fingerprint = public_key_fingerprint(bundle.key.public_key())
    if bundle.cert is None or public_key_fingerprint(bundle.cert.certificate.public_key()) != (
        fingerprint
    ):
        raise CertificateError(
            "the .p12's certificate is not the one for its key: download the file again from "
            "the CA's subscriber portal"
        )
    pem = b"".join(c.public_bytes(Encoding.PEM) for c in certificates)
    issued = check_issued_certificate(
        pem,
        key_fingerprint=fingerprint,
        domain=domain,
        max_lifetime_days=max_lifetime_days,
        issuers=issuers,
        ca=ca,
    )
    return issued, fingerprint
