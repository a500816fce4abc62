"""What the property-based tests found, pinned as plain examples so CI keeps them fixed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from certrenew.errors import InventoryError
from certrenew.inventory import parse_inventory
from certrenew.pki.certs import load_certificate
from certrenew.pki.csr import check_csr, check_key_matches_csr, load_csr
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import classify_file, describe_file, public_key_fingerprint
from certrenew.pki.issued import check_issued_certificate
from certrenew.pki.keyprotect import protect_private_key
from certrenew.pki.outer import read_outer_certificate, rfc4514
from tests.odd_certs import forge, name, openssl_view_of, pem, spki, tlv
from tests.pki import DOMAIN, SUBJECT, TestCA, ec_key, key_pem, make_csr, pem_begin, rsa_key


def _version_2_csr() -> bytes:
    """A CSR whose version says 2: only version 1 (encoded 0) exists."""
    data = make_csr(rsa_key(2048), encoding=serialization.Encoding.DER)
    at = data.index(b"\x02\x01\x00")
    return data[:at] + b"\x02\x01\x01" + data[at + 3 :]


@pytest.mark.parametrize("form", ["DER", "PEM"])
def test_a_csr_of_an_unknown_version_is_refused_with_its_version(form: str) -> None:
    data = _version_2_csr()
    if form == "PEM":
        data = pem(data, "CERTIFICATE REQUEST")
    with pytest.raises(CertificateError, match="version 2, but only version 1 exists"):
        load_csr(data)
    with pytest.raises(CertificateError, match="version 2"):
        check_key_matches_csr(key_pem(rsa_key(2048)), data)


def test_a_csr_of_an_unknown_version_is_described_not_raised() -> None:
    assert classify_file(_version_2_csr()) == "unknown"
    assert "neither PEM nor readable DER" in describe_file(_version_2_csr())


def test_a_chain_certificate_of_an_unknown_version_is_refused_at_step_4() -> None:
    ca = TestCA(n=5)
    key = ec_key("P-256", n=702)
    leaf = ca.issue(key.public_key())
    odd = forge(public_key_info=spki(ec_key("P-256", n=703)), issuer_cn="Test Issuing CA 5")
    version_4 = odd.replace(tlv(0xA0, b"\x02\x01\x02"), tlv(0xA0, b"\x02\x01\x03"), 1)
    assert version_4 != odd
    with pytest.raises(CertificateError, match=r"breaks the X\.509 encoding rules"):
        check_issued_certificate(
            leaf.public_bytes(serialization.Encoding.PEM) + pem(version_4),
            key_fingerprint=public_key_fingerprint(key.public_key()),
            domain=DOMAIN,
            max_lifetime_days=398,
            now=datetime.now(UTC),
        )


@pytest.mark.parametrize(
    "text",
    [
        "[" * 3000,
        "{a: " * 3000,
        "- " * 3000,
        "certificates: &a [*a]",
        "defaults: &a {x: *a}",
    ],
    ids=["brackets", "mappings", "dashes", "alias-in-list", "alias-in-mapping"],
)
def test_an_inventory_nested_without_end_is_one_line(text: str) -> None:
    # One line naming the file: libyaml refuses the depth, the alias walk the loop.
    with pytest.raises(
        InventoryError,
        match=r"^inventory\.yaml(:\d+)?: (nested too deeply|not valid YAML: exceeded maximum "
        r"nesting depth|the block that starts here holds an alias \(\*name\) to itself)",
    ):
        parse_inventory(text, "inventory.yaml")


def test_a_csr_whose_key_algorithm_is_unknown_is_refused() -> None:
    """The key's algorithm identifier altered (rsaEncryption → a signature OID)."""
    data = make_csr(rsa_key(2048), encoding=serialization.Encoding.DER)
    rsa_encryption = bytes.fromhex("06092a864886f70d010101")
    assert rsa_encryption in data
    odd = data.replace(rsa_encryption, bytes.fromhex("06092a864886f70d01010b"), 1)
    with pytest.raises(CertificateError, match="public key is of a kind that cannot be read"):
        check_csr(odd, SUBJECT, DOMAIN)
    with pytest.raises(CertificateError, match="public key is of a kind that cannot be read"):
        check_key_matches_csr(key_pem(rsa_key(2048)), odd)


def test_a_file_of_begin_lines_is_refused_at_once() -> None:
    """Found while reading the PEM decoder against hostile files: a search for each BEGIN
    line's END took minutes on a 450 kB file of BEGIN lines; now one pass."""
    data = pem_begin("CERTIFICATE") + b"\n"
    with pytest.raises(CertificateError, match="damaged or truncated"):
        load_certificate(data * 16_000, source="hostile.pem")


@pytest.mark.parametrize("organization", [" ", "  ", " x ", "x "])
def test_a_name_of_spaces_is_escaped_once_as_openssl_does(organization: str) -> None:
    der = forge(public_key_info=spki(ec_key()), subject=name("0", organization))
    assert rfc4514(read_outer_certificate(der).subject) == openssl_view_of(der).subject


def test_a_key_of_an_unknown_algorithm_is_refused_when_protected() -> None:
    """Found by the 10,000-input run: a PKCS#8 key whose algorithm OID was altered."""
    key_der = rsa_key(2048).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    rsa_oid = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1
    data = pem(key_der.replace(rsa_oid, b"\x29" + rsa_oid[1:], 1), "PRIVATE KEY")
    with pytest.raises(CertificateError, match="not a readable PEM private key"):
        protect_private_key(data, "a passphrase")
