"""Property-based tests: whatever bytes or text a person or a server hands the parsers, the
answer is a result or the parser's own error with a message, never another exception.

Inputs are random bytes and text, DER trees built from the tags certificates use,
and valid certificates, CSRs, keys, bundles and inventories mutated byte by byte
(flipped, cut, spliced), in DER and in PEM under every label the parsers know. CI
runs a few hundred per parser; `make fuzz` runs 10,000 (tests/conftest.py).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import given
from hypothesis import strategies as st

from certrenew.errors import InventoryError
from certrenew.inventory import parse_inventory
from certrenew.pki.certs import certificate_facts, load_certificate
from certrenew.pki.csr import check_csr, check_key_matches_csr, load_csr, load_private_key
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import classify_file, describe_file, public_key_fingerprint
from certrenew.pki.issued import check_issued_certificate
from certrenew.pki.keyprotect import protect_private_key
from certrenew.pki.outer import read_outer_certificate, rfc4514
from tests import odd_certs
from tests.odd_certs import openssl_view_of, pem, tlv
from tests.pki import DOMAIN, SUBJECT, TestCA, der, ec_key, key_pem, make_csr, rsa_key

pytestmark = pytest.mark.fuzz

NOW = datetime(2026, 3, 1, tzinfo=UTC)
LABELS = (
    "CERTIFICATE",
    "X509 CERTIFICATE",
    "TRUSTED CERTIFICATE",
    "CERTIFICATE REQUEST",
    "NEW CERTIFICATE REQUEST",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "RSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PKCS7",
    "CMS",
    "PUBLIC KEY",
)
# Tags of the structures the parsers walk: universal types and the context tags
# of certificates, CSRs, keys and PKCS#7.
TAGS = (
    *(0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0x01, 0x0C, 0x13, 0x16, 0x17, 0x18, 0x1E),
    *(0xA0, 0xA1, 0xA3, 0x80, 0x81, 0x82, 0x87),
)


@functools.cache
def seeds() -> dict[str, bytes]:
    """Valid files of every kind the parsers take, to mutate."""
    ca = TestCA(n=9)
    key = rsa_key(2048)
    leaf = ca.issue(key.public_key())
    p7 = pkcs7.serialize_certificates([leaf, ca.intermediate], serialization.Encoding.DER)
    p12 = pkcs12.serialize_key_and_certificates(
        b"leaf", key, leaf, [ca.intermediate], serialization.NoEncryption()
    )
    return {
        "leaf": der(leaf),
        "chain": pem(der(leaf)) + pem(der(ca.intermediate)),
        "odd-san": odd_certs.with_extension(odd_certs.SUBJECT_ALT_NAME, odd_certs.MALFORMED),
        "odd-null": odd_certs.null_signature_parameters(),
        "p7": p7,
        "p12": p12,
        "csr": make_csr(key, encoding=serialization.Encoding.DER),
        "csr-pem": make_csr(ec_key("P-256")),
        "key": key_pem(key),
        "key-ec-der": ec_key("P-256").private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    }


def der_trees(depth: int = 4) -> st.SearchStrategy[bytes]:
    """DER built from the tags certificates use, nested, with plausible primitive contents."""
    leaves = st.builds(
        tlv,
        st.sampled_from(TAGS),
        st.one_of(
            st.binary(max_size=24),
            st.sampled_from([b"250301083000Z", b"20510301083000Z", b"\x2a\x86\x48", b"\x00"]),
        ),
    )
    return st.recursive(
        leaves,
        _constructed,
        max_leaves=depth * 6,
    )


def _constructed(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda tag, parts: tlv(tag, b"".join(parts)),
        st.sampled_from((0x30, 0x31, 0xA0, 0xA3, 0x04, 0x03)),
        st.lists(inner, max_size=6),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid seed with a few bytes flipped, cut, inserted or repeated."""
    data = bytearray(seeds()[draw(st.sampled_from(sorted(seeds())))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(("flip", "cut", "insert", "repeat", "truncate")))
        if operation == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif operation == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


EXTENSION_OIDS = (
    odd_certs.SUBJECT_ALT_NAME,
    odd_certs.CERTIFICATE_POLICIES,
    odd_certs.EXTENDED_KEY_USAGE,
    odd_certs.SCT_LIST,
    "2.5.29.19",
    "1.2.3.4",
)


def times() -> st.SearchStrategy[bytes]:
    digits = st.text("0123456789", min_size=10, max_size=14)
    zone = st.sampled_from(["Z", "+0100", "-2359", "", ".5Z", "+9999"])
    text = st.builds(lambda d, z: (d + z).encode(), digits, zone)
    return st.builds(tlv, st.sampled_from((0x17, 0x18, 0x04)), text)


def general_names() -> st.SearchStrategy[bytes]:
    """subjectAltName values: DNS names, addresses of any length, other kinds, random DER."""
    name = st.one_of(
        st.builds(tlv, st.just(0x82), st.one_of(st.binary(max_size=20), st.just(b"odd.cat"))),
        st.builds(tlv, st.just(0x87), st.binary(max_size=17)),
        st.builds(tlv, st.sampled_from((0x81, 0x86, 0xA0, 0xA4)), st.binary(max_size=12)),
    )
    return st.one_of(
        st.builds(lambda ns: tlv(0x30, b"".join(ns)), st.lists(name, max_size=5)), der_trees()
    )


def names() -> st.SearchStrategy[bytes]:
    """Names of CN, O and C attributes in any string type (or none), with any contents."""
    attribute = st.builds(
        lambda oid, tag, value: tlv(0x31, tlv(0x30, odd_certs.oid(oid) + tlv(tag, value))),
        st.sampled_from(("2.5.4.3", "2.5.4.10", "2.5.4.6", "1.2.840.113549.1.9.1")),
        st.sampled_from((0x0C, 0x13, 0x14, 0x16, 0x1C, 0x1E, 0x02, 0x03)),
        st.one_of(st.binary(max_size=16), st.text(max_size=8).map(str.encode)),
    )
    return st.builds(lambda rdns: tlv(0x30, b"".join(rdns)), st.lists(attribute, max_size=4))


@st.composite
def forged(draw: st.DrawFn) -> bytes:
    """Well-framed, signed certificates whose fields hold anything: the outer reader's inputs."""
    extensions = tuple(
        tlv(0x30, odd_certs.oid(oid) + tlv(0x04, value))
        for oid, value in draw(
            st.lists(st.tuples(st.sampled_from(EXTENSION_OIDS), general_names()), max_size=3)
        )
    )
    return odd_certs.forge(
        public_key_info=draw(
            st.one_of(st.just(odd_certs.spki(ec_key("P-256"))), der_trees(), st.binary(max_size=8))
        ),
        subject=draw(names()),
        serial=draw(st.integers(-(2**160), 2**160)),
        signature_algorithm=draw(
            st.sampled_from([odd_certs.seq(odd_certs.oid("1.2.3")), b"\x30\x00"])
        ),
        extensions=extensions,
        not_before=draw(times()),
        not_after=draw(times()),
    )


def file_bytes() -> st.SearchStrategy[bytes]:
    """Any of the above, as it is or wrapped in PEM under a label the parsers know."""
    raw = st.one_of(st.binary(max_size=256), der_trees(), mutated(), forged())
    wrapped = st.builds(pem, raw, st.sampled_from(LABELS))
    return st.one_of(raw, wrapped)


# --- certificates -----------------------------------------------------------------------


@given(file_bytes())
def test_certificate_files_read_or_refuse(data: bytes) -> None:
    assert classify_file(data) in (
        "csr",
        "private_key",
        "certificate",
        "pkcs7",
        "pkcs12",
        "unknown",
    )
    assert describe_file(data)
    try:
        certificate = load_certificate(data, password=None, source="fuzz.crt")
    except CertificateError as exc:
        assert str(exc).startswith("fuzz.crt: ")
        return
    facts = certificate_facts(certificate)
    assert facts.serial and len(facts.sha256) == 64
    assert (facts.sans is None) == (facts.note is not None)


@given(file_bytes(), st.one_of(st.none(), file_bytes()))
def test_certificates_handed_in_at_step_4_pass_or_are_refused(
    data: bytes, chain: bytes | None
) -> None:
    try:
        issued = check_issued_certificate(
            data,
            key_fingerprint=public_key_fingerprint(rsa_key(2048).public_key()),
            domain=DOMAIN,
            max_lifetime_days=398,
            now=NOW,
            chain=chain,
        )
    except CertificateError as exc:
        assert str(exc)
        return
    assert issued.facts.covers(DOMAIN)


# Printable ASCII; not starting with "#", which RFC 4514 (and cryptography) escape and
# OpenSSL 3.0 does not.
PRINTABLE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40
).filter(lambda text: not text.startswith("#"))


def certificate_times() -> st.SearchStrategy[bytes]:
    """Whole seconds in UTC: UTCTime through 2049, GeneralizedTime after (RFC 5280)."""
    moments = st.datetimes(datetime(1950, 1, 1), datetime(9999, 12, 31, 23, 59, 59))
    return moments.map(
        lambda m: (
            tlv(0x17, m.strftime("%y%m%d%H%M%SZ").encode())
            if m.year < 2050
            else tlv(0x18, m.strftime("%Y%m%d%H%M%SZ").encode())
        )
    )


@given(
    serial=st.integers(-(2**159), 2**159 - 1),
    not_before=certificate_times(),
    not_after=certificate_times(),
    cn=PRINTABLE,
    organization=PRINTABLE,
)
def test_forged_certificates_read_as_openssl_reads_them(
    serial: int, not_before: bytes, not_after: bytes, cn: str, organization: str
) -> None:
    data = odd_certs.forge(
        public_key_info=odd_certs.spki(ec_key("P-256")),
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        subject=odd_certs.name(cn, organization),
    )
    facts = certificate_facts(data)
    oracle = openssl_view_of(data)
    assert (facts.not_before, facts.not_after) == (oracle.not_before, oracle.not_after)
    assert (facts.serial, facts.sha256, facts.issuer) == (
        oracle.serial,
        oracle.sha256,
        oracle.issuer,
    )
    assert rfc4514(read_outer_certificate(data).subject) == oracle.subject


# --- CSRs and keys ----------------------------------------------------------------------


@given(file_bytes())
def test_csrs_pass_or_are_refused(data: bytes) -> None:
    try:
        load_csr(data)
        check_csr(data, SUBJECT, DOMAIN)
    except CertificateError as exc:
        assert str(exc)


@given(file_bytes())
def test_private_keys_load_or_are_refused(data: bytes) -> None:
    try:
        load_private_key(data)
        check_key_matches_csr(data, seeds()["csr"])
    except CertificateError as exc:
        assert str(exc)
    try:
        protect_private_key(data, "a passphrase")
    except CertificateError as exc:
        assert str(exc)


# --- inventories ------------------------------------------------------------------------

KEYS = (
    "defaults", "certificates", "name", "domain", "owner", "ca", "endpoints", "files",
    "warn_days", "critical_days", "host", "port", "server_name", "path", "password_env",
    "password",
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["seu.example.cat", "127.0.0.1:443", "[::1]:9443", "*.example.cat", "x:0"]),
)


def inventory_values() -> st.SearchStrategy[object]:
    return st.recursive(
        SCALARS,
        _collections,
        max_leaves=30,
    )


def _collections(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6))


EXAMPLE_INVENTORY = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"


@st.composite
def inventory_texts(draw: st.DrawFn) -> str:
    """YAML dumped from inventory-shaped values, the example inventory mutated, YAML nested
    deeply or through aliases, or any text."""
    choice = draw(st.integers(0, 19))
    if choice == 19:
        # Past ~1,000 levels every YAML reader recurses out; each such case costs seconds.
        opening = draw(st.sampled_from(["[", "{a: ", "- ", "certificates:\n  - "]))
        return opening * draw(st.sampled_from([2, 20, 200, 2000]))
    if choice == 18:
        anchor = draw(st.sampled_from(["&a [*a]", "&a {x: *a}", "&a [1, [*a]]", "&a *a"]))
        return draw(st.sampled_from(["certificates: ", "defaults: ", "x: ", ""])) + anchor
    if choice < 10:
        return yaml.safe_dump(draw(inventory_values()), allow_unicode=True)
    if choice < 16:
        text = EXAMPLE_INVENTORY.read_text(encoding="utf-8")
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.text(max_size=12)) + text[at + draw(st.integers(0, 12)) :]
    return draw(st.text(max_size=200))


@given(inventory_texts())
def test_inventories_load_or_are_refused_with_a_line(text: str) -> None:
    try:
        parse_inventory(text, "inventory.yaml")
    except InventoryError as exc:
        assert str(exc).startswith("inventory.yaml")
