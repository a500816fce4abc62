"""What a monitor reads from a served certificate, without loading cryptography.

A scan reads thousands of certificates and needs only their outer fields:
expiry, names, issuer, serial and fingerprint. They come from our DER reader
(certrenew.pki.outer) and hashlib, so the scan neither pays for importing
cryptography (about 11 MiB and 60 ms per process) nor for loading each key.
certrenew.pki.certs adds the key to these facts where a person needs it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from certrenew.pki.der import DerError
from certrenew.pki.errors import CertificateError
from certrenew.pki.outer import (
    SUBJECT_ALT_NAME,
    OuterCertificate,
    common_name,
    read_outer_certificate,
    rfc4514,
    subject_alt_names,
)


@dataclass(frozen=True)
class ServedFacts:
    """What a person (or the scan) wants to know about one certificate.

    `sans` is None when the subjectAltName extension cannot be read; `note`
    then says why. Every other fact comes from the certificate's outer
    structure, so an unreadable extension never hides the expiry.
    """

    not_before: datetime
    not_after: datetime
    subject_cn: str | None
    sans: tuple[str, ...] | None
    issuer: str
    serial: str
    sha256: str
    note: str | None = None

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days until expiry, rounded down; negative once expired."""
        delta = self.not_after - (now or datetime.now(UTC))
        return delta.days

    def covers(self, domain: str) -> bool | None:
        """Whether the certificate is valid for `domain`; None when its names are unknown."""
        if self.sans is None:
            return None
        return covers_domain(self.subject_cn, self.sans, domain)


def served_facts(der: bytes) -> ServedFacts:
    """The facts of a certificate given as DER."""
    return facts_of(outer_certificate(der, "the certificate"))


def facts_of(outer: OuterCertificate) -> ServedFacts:
    sans, note = _sans(outer)
    return ServedFacts(
        not_before=outer.not_before,
        not_after=outer.not_after,
        subject_cn=common_name(outer.subject),
        sans=sans,
        issuer=rfc4514(outer.issuer),
        serial=serial_hex(outer.serial),
        sha256=hashlib.sha256(outer.der).hexdigest(),
        note=note,
    )


def outer_certificate(der: bytes, source: str) -> OuterCertificate:
    try:
        return read_outer_certificate(der)
    except DerError as exc:
        raise CertificateError(
            f"{source} cannot be read ({exc}): it is damaged or truncated"
        ) from None


def serial_hex(serial: int) -> str:
    """Upper-case hex, even length: the form openssl and browsers show."""
    if serial < 0:
        return "-" + serial_hex(-serial)
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _sans(outer: OuterCertificate) -> tuple[tuple[str, ...] | None, str | None]:
    """The names, or None and why they cannot be read."""
    if outer.extensions is None:
        return None, "the certificate's extensions cannot be read"
    found = [e for e in outer.extensions if e.oid == SUBJECT_ALT_NAME]
    if not found:
        return (), None
    if len(found) > 1:
        return None, f"the certificate has {len(found)} subjectAltName extensions"
    try:
        return subject_alt_names(found[0].value), None
    except DerError as exc:
        return None, f"the subjectAltName extension cannot be read ({exc})"


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
