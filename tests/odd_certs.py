"""Certificates that OpenSSL reads and stricter parsers refuse, built byte by byte at test time.

Real servers serve such certificates: an SCT list or certificate policy a CA
encoded wrongly, a DSA key whose parameters are left to the issuer, a NULL
where the signature algorithm wants nothing. Each is built here from its DER
pieces with a tiny encoder of its own (not certrenew's reader, which the
tests check), and signed for real by an issuer key, so `openssl x509` can be
asked what it reads in them.
"""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.x509.oid import NameOID

from tests.pki import ec_key

NOT_BEFORE = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
NOT_AFTER = datetime(2027, 3, 1, 8, 30, tzinfo=UTC)
# Extensions whose contents OpenSSL shows as they are and cryptography refuses to parse.
SCT_LIST = "1.3.6.1.4.1.11129.2.4.2"
CERTIFICATE_POLICIES = "2.5.29.32"
EXTENDED_KEY_USAGE = "2.5.29.37"
SUBJECT_ALT_NAME = "2.5.29.17"
# A SEQUENCE that announces more than it holds: malformed for every extension above.
MALFORMED = b"\x30\x03\x02\x01"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
DSA = "1.2.840.10040.4.1"
NULL = b"\x05\x00"


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def name(cn: str, organization: str = "Consorci AOC, Serveis", country: str = "ES") -> bytes:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    ).public_bytes()


def extension(dotted: str, value: bytes) -> bytes:
    return seq(oid(dotted), tlv(0x04, value))


def dns_names(*names: str) -> bytes:
    """A well-formed subjectAltName value."""
    return seq(*(tlv(0x82, n.encode()) for n in names))


ISSUER_KEY = ec_key("P-256", n=700)


def forge(
    *,
    public_key_info: bytes,
    cn: str = "odd.example.cat",
    issuer_cn: str = "Odd Issuing CA",
    serial: int = 0x1A2B3C4D5E,
    signature_algorithm: bytes = seq(oid(ECDSA_SHA256)),
    extensions: tuple[bytes, ...] = (),
    not_before: bytes = tlv(0x17, b"250301083000Z"),
    not_after: bytes = tlv(0x17, b"270301083000Z"),
    subject: bytes | None = None,
) -> bytes:
    """DER of a v3 certificate signed with ECDSA by ISSUER_KEY, whatever its parts say.

    `subject`, when given, is the subject's DER as it is (any attribute, any string type).
    """
    fields = [
        tlv(0xA0, integer(2)),
        integer(serial),
        signature_algorithm,
        name(issuer_cn),
        seq(not_before, not_after),
        name(cn) if subject is None else subject,
        public_key_info,
    ]
    if extensions:
        fields.append(tlv(0xA3, seq(*extensions)))
    tbs = seq(*fields)
    signature = ISSUER_KEY.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return seq(tbs, signature_algorithm, tlv(0x03, b"\x00" + signature))


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Values OpenSSL also serves (it refuses to serve a structurally malformed EKU or SAN):
# an SCT list in a version no library knows, and a SAN holding an address with a netmask.
SCT_UNKNOWN_VERSION = tlv(0x04, b"\x00\x05\x00\x03abc")
SAN_WITH_NETMASK = seq(
    tlv(0x82, b"odd.example.cat"), tlv(0x87, bytes([127, 0, 0, 1, 255, 255, 255, 0]))
)


def with_extension(dotted: str, value: bytes, *, san: bool = True) -> bytes:
    """A leaf for odd.example.cat whose extension `dotted` holds `value`."""
    extensions = [extension(dotted, value)]
    if san and dotted != SUBJECT_ALT_NAME:
        extensions.insert(0, extension(SUBJECT_ALT_NAME, dns_names("odd.example.cat")))
    return forge(public_key_info=spki(ec_key("P-256", n=701)), extensions=tuple(extensions))


def dsa_without_parameters() -> bytes:
    """A DSA leaf whose key leaves p, q and g to its issuer (RFC 3279 2.3.2)."""
    key = dsa.generate_private_key(1024)
    y = key.public_key().public_numbers().y
    info = seq(seq(oid(DSA)), tlv(0x03, b"\x00" + integer(y)))
    return forge(
        public_key_info=info,
        extensions=(extension(SUBJECT_ALT_NAME, dns_names("odd.example.cat")),),
    )


def null_signature_parameters() -> bytes:
    """ECDSA with SHA-256 written with NULL parameters, which RFC 5758 says to leave out."""
    return forge(
        public_key_info=spki(ec_key("P-256", n=701)),
        signature_algorithm=seq(oid(ECDSA_SHA256), NULL),
        extensions=(extension(SUBJECT_ALT_NAME, dns_names("odd.example.cat")),),
    )


def pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    """PEM of `der` under any label, e.g. the legacy "X509 CERTIFICATE"."""
    text = base64.b64encode(der)
    lines = b"\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    marker = label.encode()
    return b"-----BEGIN " + marker + b"-----\n" + lines + b"\n-----END " + marker + b"-----\n"


@dataclass(frozen=True)
class OpenSSLView:
    """What `openssl x509` prints for a certificate: the oracle the tests compare with."""

    not_before: datetime
    not_after: datetime
    serial: str
    subject: str
    issuer: str
    sha256: str


def openssl_view(path: Path) -> OpenSSLView:
    """Ask `openssl x509` (DER or PEM by content) for the outer fields of a certificate file."""
    form = "PEM" if path.read_bytes().lstrip().startswith(b"-----") else "DER"
    output = subprocess.run(
        [
            "openssl", "x509", "-inform", form, "-in", str(path), "-noout",
            "-startdate", "-enddate", "-serial", "-subject", "-issuer",
            "-fingerprint", "-sha256", "-nameopt", "RFC2253",
        ],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    fields = dict(line.split("=", 1) for line in output.splitlines())

    def moment(text: str) -> datetime:
        return datetime.strptime(re.sub(r"\s+", " ", text), "%b %d %H:%M:%S %Y GMT").replace(
            tzinfo=UTC
        )

    return OpenSSLView(
        not_before=moment(fields["notBefore"]),
        not_after=moment(fields["notAfter"]),
        serial=fields["serial"],
        subject=fields["subject"],
        issuer=fields["issuer"],
        sha256=fields["sha256 Fingerprint"].replace(":", "").lower(),
    )
