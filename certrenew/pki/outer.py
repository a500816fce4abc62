"""A certificate's outer structure: the fields a monitor needs, read with our own DER reader.

OpenSSL reads certificates that cryptography refuses as a whole: a signature
algorithm with NULL parameters, a DSA key whose parameters come from the
issuer, an extension whose contents break their own rules. Expiry, serial,
names and fingerprint sit in the outer TBSCertificate and do not depend on
any of that, so they are read here field by field; extensions are kept as
raw bytes and only the subjectAltName is ever decoded (subject_alt_names),
so one unreadable extension can never hide the expiry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from certrenew.pki.der import (
    BIT_STRING,
    OCTET_STRING,
    SEQUENCE,
    SET,
    DerError,
    Element,
    children,
    read_boolean,
    read_element,
    read_integer,
    read_oid,
    read_string,
    read_time,
)

SUBJECT_ALT_NAME = "2.5.29.17"
COMMON_NAME = "2.5.4.3"

# The short names RFC 4514 (and cryptography's rfc4514_string) use; others print as OIDs.
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# Key algorithms by the OID in SubjectPublicKeyInfo, for keys cryptography cannot load.
KEY_ALGORITHMS = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.113549.1.1.10": "RSA-PSS",
    "1.2.840.10040.4.1": "DSA",
    "1.2.840.10045.2.1": "EC",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
}
_VERSION = 0xA0
_UNIQUE_IDS = frozenset({0x81, 0x82, 0xA1, 0xA2})
_EXTENSIONS = 0xA3
_DNS_NAME = 0x82
_IP_ADDRESS = 0x87

# One attribute of a name: its OID and its text, or the whole encoding when it is no string.
Attribute = tuple[str, str | bytes]
Name = tuple[tuple[Attribute, ...], ...]


@dataclass(frozen=True)
class Extension:
    oid: str
    critical: bool
    value: bytes


@dataclass(frozen=True)
class OuterCertificate:
    """What the outer structure says; `extensions` is None when their block cannot be read."""

    der: bytes
    serial: int
    issuer: Name
    subject: Name
    not_before: datetime
    not_after: datetime
    public_key_info: bytes
    public_key_algorithm: str
    extensions: tuple[Extension, ...] | None
    signature_algorithm: str = ""  # the issuer's signature (dotted OID); "" when unreadable


def read_outer_certificate(data: bytes) -> OuterCertificate:
    """The certificate at the start of `data`; bytes after it are ignored, as OpenSSL does.

    Raises DerError when the outer structure itself cannot be read.
    """
    certificate, _ = read_element(data)
    parts = children(certificate.expect(SEQUENCE, "Certificate"))
    if len(parts) != 3:
        raise DerError("Certificate: expected tbsCertificate, signatureAlgorithm and signature")
    signature = children(parts[1].expect(SEQUENCE, "signatureAlgorithm"))
    parts[2].expect(BIT_STRING, "signature")
    fields = children(parts[0].expect(SEQUENCE, "tbsCertificate"))
    if fields and fields[0].tag == _VERSION:
        fields = fields[1:]
    if len(fields) < 6:
        raise DerError("tbsCertificate: fields are missing")
    serial, algorithm, issuer, validity, subject, key_info, *rest = fields
    algorithm.expect(SEQUENCE, "signature")
    dates = children(validity.expect(SEQUENCE, "validity"))
    if len(dates) != 2:
        raise DerError("validity: expected notBefore and notAfter")
    return OuterCertificate(
        der=certificate.encoded,
        serial=read_integer(serial, "serialNumber"),
        issuer=read_name(issuer, "issuer"),
        subject=read_name(subject, "subject"),
        not_before=read_time(dates[0], "notBefore"),
        not_after=read_time(dates[1], "notAfter"),
        public_key_info=key_info.encoded,
        public_key_algorithm=_key_algorithm(key_info),
        extensions=_extensions(rest),
        signature_algorithm=_signature_algorithm(signature),
    )


def read_name(element: Element, what: str) -> Name:
    """A Name as RDNs of (OID, value); values that are no string keep their encoding."""
    rdns: list[tuple[Attribute, ...]] = []
    for rdn in children(element.expect(SEQUENCE, what)):
        attributes: list[Attribute] = []
        for pair in children(rdn.expect(SET, what)):
            items = children(pair.expect(SEQUENCE, what))
            if len(items) != 2:
                raise DerError(f"{what}: an attribute is not a type and a value")
            try:
                value: str | bytes = read_string(items[1], what)
            except DerError:
                value = items[1].encoded
            attributes.append((read_oid(items[0], what), value))
        rdns.append(tuple(attributes))
    return tuple(rdns)


def rfc4514(name: Name) -> str:
    """The name as RFC 4514 text, most specific part first, as cryptography writes it."""
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(oid, oid)}={_escape(value)}" for oid, value in rdn)
        for rdn in reversed(name)
    )


def common_name(name: Name) -> str | None:
    """The first CN's text, or None without one."""
    for rdn in name:
        for oid, value in rdn:
            if oid == COMMON_NAME and isinstance(value, str):
                return value
    return None


def subject_alt_names(value: bytes) -> tuple[str, ...]:
    """DNS names, then IP addresses, of a subjectAltName extension's value.

    Other kinds of name (e-mail, URI...) are skipped: no TLS client matches
    a host against them. Raises DerError when the value is malformed.
    """
    element, end = read_element(value)
    if end != len(value):
        raise DerError("subjectAltName: data after the list of names")
    dns: list[str] = []
    ips: list[str] = []
    for general in children(element.expect(SEQUENCE, "subjectAltName")):
        if general.tag == _DNS_NAME:
            try:
                dns.append(general.content.decode("ascii"))
            except UnicodeDecodeError:
                raise DerError("subjectAltName: a DNS name that is not ASCII") from None
        elif general.tag == _IP_ADDRESS:
            if len(general.content) not in (4, 16):
                raise DerError(f"subjectAltName: an IP address of {len(general.content)} bytes")
            ips.append(str(ipaddress.ip_address(general.content)))
    return (*dns, *ips)


def _signature_algorithm(algorithm: list[Element]) -> str:
    """Only step 4 asks (a SHA-1 signature is refused there): unreadable is "", not an error."""
    try:
        return read_oid(algorithm[0], "signatureAlgorithm") if algorithm else ""
    except DerError:
        return ""


def _key_algorithm(key_info: Element) -> str:
    parts = children(key_info.expect(SEQUENCE, "subjectPublicKeyInfo"))
    if len(parts) != 2:
        raise DerError("subjectPublicKeyInfo: expected an algorithm and a key")
    algorithm = children(parts[0].expect(SEQUENCE, "subjectPublicKeyInfo algorithm"))
    if not algorithm:
        raise DerError("subjectPublicKeyInfo: no algorithm")
    parts[1].expect(BIT_STRING, "subjectPublicKey")
    return read_oid(algorithm[0], "subjectPublicKeyInfo algorithm")


def _extensions(fields: list[Element]) -> tuple[Extension, ...] | None:
    """The extensions, or None when their block cannot be read (then no name is known)."""
    try:
        for field in fields:
            if field.tag == _EXTENSIONS:
                return _read_extensions(field)
            if field.tag not in _UNIQUE_IDS:
                raise DerError(f"tbsCertificate: unexpected field 0x{field.tag:02x}")
    except DerError:
        return None
    return ()


def _read_extensions(field: Element) -> tuple[Extension, ...]:
    inner = children(field)
    if len(inner) != 1:
        raise DerError("extensions: expected one SEQUENCE")
    found: list[Extension] = []
    for item in children(inner[0].expect(SEQUENCE, "extensions")):
        parts = children(item.expect(SEQUENCE, "extension"))
        if len(parts) == 2:
            oid, value = parts
            critical = False
        elif len(parts) == 3:
            oid, flag, value = parts
            critical = read_boolean(flag, "extension critical")
        else:
            raise DerError("extension: expected an OID, a flag and a value")
        found.append(
            Extension(
                read_oid(oid, "extension"),
                critical,
                value.expect(OCTET_STRING, "extension value").content,
            )
        )
    return tuple(found)


def _escape(value: str | bytes) -> str:
    """RFC 4514 section 2.4, as cryptography and OpenSSL escape; non-string values as #hex."""
    if isinstance(value, bytes):
        return "#" + value.hex()
    if not value:
        return ""
    for special in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(special, "\\" + special)
    value = value.replace("\0", "\\00")
    # Trailing space first: a value of one space is escaped once ("\ "), as OpenSSL does.
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    if value[0] in ("#", " "):
        value = "\\" + value
    return value
