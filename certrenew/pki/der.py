"""A minimal DER reader: just enough ASN.1 to read a certificate's outer structure.

cryptography parses a certificate as a whole and refuses it over one part it
dislikes (a NULL where it wants nothing, DSA parameters left to the issuer),
while OpenSSL, and so every server, reads those certificates. A monitor must
still see their expiry, so certrenew.pki.outer reads the fields it needs with
this reader. It knows tag-length-value framing and the few primitive types a
certificate's outer fields use, nothing more; anything it cannot read is a
DerError (a ValueError), never another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
BOOLEAN = 0x01
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18

# Lengths above this are no certificate (and would only make us slice garbage).
_MAX_LENGTH_OCTETS = 4

# The string types a distinguished name uses, and how their octets become text.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # T61String, read as OpenSSL and cryptography do
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}

# UTCTime YYMMDDHHMM[SS] and GeneralizedTime YYYYMMDDHHMM[SS[.fff]], then Z or ±hhmm.
_UTC_TIME = re.compile(rb"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})")
_GENERALIZED_TIME = re.compile(
    rb"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:[.,]\d+)?(Z|[+-]\d{4})"
)


class DerError(ValueError):
    """The bytes are not the DER this reader expected; the message says where."""


@dataclass(slots=True)  # not frozen: a certificate is 30 of them, built in a hot loop
class Element:
    """One tag-length-value: its identifier octet, its content and its whole encoding."""

    tag: int
    content: bytes
    encoded: bytes

    def expect(self, tag: int, what: str) -> Element:
        if self.tag != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{self.tag:02x}")
        return self


def read_element(data: bytes, offset: int = 0) -> tuple[Element, int]:
    """The element starting at `offset` and the offset just past it.

    Definite lengths only (long forms need not be minimal: OpenSSL takes them);
    an indefinite length or a length past the data is an error.
    """
    size = len(data)
    if offset + 2 > size:
        raise DerError("truncated: no room for a tag and a length")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-octet tags do not occur in a certificate's outer structure")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DerError("indefinite length (BER), not DER")
        if count > _MAX_LENGTH_OCTETS or start + count > size:
            raise DerError("truncated or oversized length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > size:
        raise DerError(f"truncated: an element of {length} bytes runs past the end of the data")
    return Element(tag, data[start:end], data[offset:end]), end


def children(element: Element) -> list[Element]:
    """The elements a constructed element holds, which must fill it exactly."""
    found: list[Element] = []
    offset = 0
    while offset < len(element.content):
        child, offset = read_element(element.content, offset)
        found.append(child)
    return found


def read_integer(element: Element, what: str) -> int:
    element.expect(INTEGER, what)
    if not element.content:
        raise DerError(f"{what}: empty INTEGER")
    return int.from_bytes(element.content, "big", signed=True)


def read_oid(element: Element, what: str) -> str:
    """The dotted form of an OBJECT IDENTIFIER, e.g. "2.5.29.17"."""
    content = element.expect(OID, what).content
    try:
        return _dotted(content)
    except DerError:
        raise DerError(f"{what}: malformed OBJECT IDENTIFIER") from None


@lru_cache(maxsize=512)
def _dotted(content: bytes) -> str:
    """Cached: a certificate names the same few OIDs again and again (five per served one)."""
    if not content or content[-1] & 0x80:
        raise DerError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def read_boolean(element: Element, what: str) -> bool:
    content = element.expect(BOOLEAN, what).content
    if len(content) != 1:
        raise DerError(f"{what}: malformed BOOLEAN")
    return content != b"\x00"


def read_time(element: Element, what: str) -> datetime:
    """UTCTime (years 1950-2049, RFC 5280) or GeneralizedTime, as an aware UTC datetime."""
    if element.tag == UTC_TIME:
        match = _UTC_TIME.fullmatch(element.content)
    elif element.tag == GENERALIZED_TIME:
        match = _GENERALIZED_TIME.fullmatch(element.content)
    else:
        raise DerError(f"{what}: expected UTCTime or GeneralizedTime, found 0x{element.tag:02x}")
    if match is None:
        raise DerError(f"{what}: malformed time {element.content!r}")
    year, month, day, hour, minute = (int(group) for group in match.groups()[:5])
    second = int(match[6] or 0)
    if element.tag == UTC_TIME:
        year += 1900 if year >= 50 else 2000
    zone = match[7]
    offset = (
        timedelta(0) if zone == b"Z" else timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    )
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return moment - offset if zone[:1] == b"+" else moment + offset
    except (ValueError, OverflowError):
        raise DerError(f"{what}: impossible date {element.content!r}") from None


def read_string(element: Element, what: str) -> str:
    """The text of one of the string types a distinguished name uses."""
    codec = _STRING_CODECS.get(element.tag)
    if codec is None:
        raise DerError(f"{what}: tag 0x{element.tag:02x} is not a string type")
    try:
        return element.content.decode(codec)
    except UnicodeDecodeError:
        raise DerError(f"{what}: text that is not valid {codec}") from None
