"""The DER reader under the certificate facts: framing, the primitive types, names and SANs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from certrenew.pki.certs import certificate_facts, serial_hex
from certrenew.pki.der import (
    DerError,
    Element,
    read_element,
    read_integer,
    read_oid,
    read_string,
    read_time,
)
from certrenew.pki.outer import read_name, read_outer_certificate, rfc4514, subject_alt_names
from tests.odd_certs import forge, oid, openssl_view, seq, spki, tlv
from tests.pki import ec_key


def element(data: bytes) -> Element:
    found, end = read_element(data)
    assert end == len(data)
    return found


@pytest.mark.parametrize(
    ("data", "content"),
    [
        (b"\x04\x02ab", b"ab"),
        (b"\x04\x81\x02ab", b"ab"),  # long form where the short one would do: OpenSSL takes it
        (b"\x04\x82\x00\x02ab", b"ab"),
        (b"\x04\x00", b""),
    ],
)
def test_lengths_short_and_long(data: bytes, content: bytes) -> None:
    assert element(data).content == content


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", "truncated"),
        (b"\x04", "truncated"),
        (b"\x04\x05ab", "runs past the end"),
        (b"\x30\x80\x04\x00\x00\x00", "indefinite"),
        (b"\x04\x85\x01\x00\x00\x00\x00", "oversized"),
        (b"\x04\x82\x01", "truncated"),
        (b"\x1f\x81\x01\x00", "multi-octet"),
    ],
)
def test_framing_errors_are_der_errors(data: bytes, phrase: str) -> None:
    with pytest.raises(DerError, match=phrase):
        read_element(data)


def test_the_element_after_the_first_is_left_alone() -> None:
    found, end = read_element(b"\x04\x01a\xff\xff")
    assert (found.content, end) == (b"a", 3)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**159 - 1])
def test_integers_are_signed(value: int) -> None:
    encoded = tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))
    assert read_integer(element(encoded), "n") == value


def test_an_empty_integer_is_refused() -> None:
    with pytest.raises(DerError):
        read_integer(element(b"\x02\x00"), "serialNumber")


@pytest.mark.parametrize(
    "dotted", ["2.5.29.17", "1.2.840.113549.1.1.11", "1.3.6.1.4.1.11129.2.4.2", "2.999.3", "0.9"]
)
def test_object_identifiers(dotted: str) -> None:
    assert read_oid(element(oid(dotted)), "oid") == dotted


@pytest.mark.parametrize("content", [b"", b"\x2a\x86"])
def test_malformed_object_identifiers(content: bytes) -> None:
    with pytest.raises(DerError):
        read_oid(element(tlv(0x06, content)), "oid")


@pytest.mark.parametrize(
    ("tag", "text", "moment"),
    [
        (0x17, b"491231235959Z", datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (0x17, b"500101000000Z", datetime(1950, 1, 1, tzinfo=UTC)),
        (0x17, b"2703010830Z", datetime(2027, 3, 1, 8, 30, tzinfo=UTC)),
        (0x17, b"270301083000+0100", datetime(2027, 3, 1, 7, 30, tzinfo=UTC)),
        (0x17, b"270301083000-0230", datetime(2027, 3, 1, 11, 0, tzinfo=UTC)),
        (0x18, b"20500101000000Z", datetime(2050, 1, 1, tzinfo=UTC)),
        (0x18, b"20270301083000.123Z", datetime(2027, 3, 1, 8, 30, tzinfo=UTC)),
        (0x18, b"99991231235959Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_times(tag: int, text: bytes, moment: datetime) -> None:
    assert read_time(element(tlv(tag, text)), "notAfter") == moment


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        (0x17, b"271301000000Z"),
        (0x17, b"270230000000Z"),
        (0x17, b"2703010830"),
        (0x17, b"27030108300Z"),
        (0x18, b"99991231235959-0100"),  # past year 9999 once the offset applies
        (0x18, b"00010101000000+0100"),
        (0x02, b"\x01"),
    ],
)
def test_impossible_times_are_der_errors(tag: int, text: bytes) -> None:
    with pytest.raises(DerError):
        read_time(element(tlv(tag, text)), "notAfter")


@pytest.mark.parametrize(
    ("tag", "data", "text"),
    [
        (0x0C, "Generalitat de Catalunya · Àrea".encode(), "Generalitat de Catalunya · Àrea"),
        (0x13, b"ES", "ES"),
        (0x14, b"Bon dia \xe0", "Bon dia à"),
        (0x1E, "Àrea".encode("utf-16-be"), "Àrea"),
        (0x1C, "Àrea".encode("utf-32-be"), "Àrea"),
    ],
)
def test_strings(tag: int, data: bytes, text: str) -> None:
    assert read_string(element(tlv(tag, data)), "name") == text


@pytest.mark.parametrize(("tag", "data"), [(0x0C, b"\xff"), (0x13, b"\xe0"), (0x02, b"\x01")])
def test_bad_strings_are_der_errors(tag: int, data: bytes) -> None:
    with pytest.raises(DerError):
        read_string(element(tlv(tag, data)), "name")


@pytest.mark.parametrize(
    "value",
    ["plain", "a,b", "a+b", 'q"uote', "back\\slash", "#hash", " lead", "trail ", "semi;<>", ""],
)
def test_names_print_as_cryptography_prints_them(value: str) -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ES"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, value or "x"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "certificats@aoc.cat"),
            x509.NameAttribute(NameOID.COMMON_NAME, value or "x"),
        ]
    )
    assert rfc4514(read_name(element(name.public_bytes()), "subject")) == name.rfc4514_string()


def test_a_name_value_that_is_no_string_prints_as_its_encoding() -> None:
    attribute = seq(oid("2.5.4.3"), tlv(0x02, b"\x05"))
    name = read_name(element(seq(tlv(0x31, attribute))), "subject")
    assert rfc4514(name) == "CN=#020105"


def test_subject_alt_names_dns_then_ip() -> None:
    value = seq(
        tlv(0x87, bytes([10, 0, 0, 1])),
        tlv(0x82, b"seu.example.cat"),
        tlv(0x81, b"certificats@aoc.cat"),  # an e-mail name: no TLS client matches it
        tlv(0x87, bytes(15) + b"\x01"),
        tlv(0x82, b"*.example.cat"),
    )
    assert subject_alt_names(value) == ("seu.example.cat", "*.example.cat", "10.0.0.1", "::1")


@pytest.mark.parametrize(
    "value",
    [
        seq(tlv(0x82, "sèu.cat".encode())),
        seq(tlv(0x87, bytes(8))),
        seq(tlv(0x82, b"a.cat")) + b"\x00",
        b"\x30\x03\x02\x01",
        tlv(0x31, b""),
    ],
)
def test_malformed_subject_alt_names_are_der_errors(value: bytes) -> None:
    with pytest.raises(DerError):
        subject_alt_names(value)


@pytest.mark.parametrize(
    ("serial", "shown"), [(1, "01"), (0x1A2B3C, "1A2B3C"), (0xABC, "0ABC"), (-5, "-05"), (0, "00")]
)
def test_serial_hex(serial: int, shown: str) -> None:
    assert serial_hex(serial) == shown


@pytest.mark.parametrize(
    ("serial", "not_after"),
    [
        (-0x1234, tlv(0x17, b"270301083000Z")),
        (2**150 + 7, tlv(0x18, b"20510301083000Z")),
        (0, tlv(0x17, b"491231235959Z")),
    ],
)
def test_serials_and_far_dates_agree_with_openssl(
    tmp_path: Path, serial: int, not_after: bytes
) -> None:
    der = forge(public_key_info=spki(ec_key()), serial=serial, not_after=not_after)
    path = tmp_path / "odd.der"
    path.write_bytes(der)
    oracle = openssl_view(path)
    facts = certificate_facts(der)
    assert (facts.serial, facts.not_after) == (oracle.serial, oracle.not_after)


def test_a_certificate_without_extensions_is_read_whole() -> None:
    der = forge(public_key_info=spki(ec_key()))
    outer = read_outer_certificate(der)
    assert outer.extensions == ()
    assert outer.der == der
