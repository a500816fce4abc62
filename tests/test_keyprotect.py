"""Optional protection of the archived private key (PKCS#8 with a passphrase)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certrenew.pki.errors import CertificateError
from certrenew.pki.keyprotect import protect_private_key, unprotected_private_key
from tests.pki import pem_begin

PASSPHRASE = "passphrase-from-the-safe-8812"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_without_a_passphrase_the_key_is_kept_as_it_is(key_pem: bytes) -> None:
    assert protect_private_key(key_pem, None) is key_pem


def test_protected_key_opens_only_with_the_passphrase(key_pem: bytes) -> None:
    protected = protect_private_key(key_pem, PASSPHRASE)
    assert protected.startswith(pem_begin("ENCRYPTED PRIVATE KEY"))
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(protected, None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(protected, b"another passphrase")
    opened = serialization.load_pem_private_key(protected, PASSPHRASE.encode())
    original = serialization.load_pem_private_key(key_pem, None)
    # Both are the RSA key made above; load_pem_private_key is typed for any key type.
    assert opened.private_numbers() == original.private_numbers()  # type: ignore[union-attr]


def test_ec_keys_are_protected_too() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    protected = protect_private_key(pem, PASSPHRASE)
    assert serialization.load_pem_private_key(protected, PASSPHRASE.encode())


def test_archived_copy_of_the_same_key_is_reused(key_pem: bytes) -> None:
    first = protect_private_key(key_pem, PASSPHRASE)
    assert protect_private_key(key_pem, PASSPHRASE) != first  # salted: new bytes every time
    assert protect_private_key(key_pem, PASSPHRASE, archived=first) == first


def test_archived_copy_of_another_key_is_not_reused(key_pem: bytes) -> None:
    other = protect_private_key(
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), PASSPHRASE
    )
    protected = protect_private_key(key_pem, PASSPHRASE, archived=other)
    assert protected != other
    assert serialization.load_pem_private_key(protected, PASSPHRASE.encode())


def test_key_already_protected_with_the_passphrase_is_kept(key_pem: bytes) -> None:
    protected = protect_private_key(key_pem, PASSPHRASE)
    assert protect_private_key(protected, PASSPHRASE) == protected


def test_key_encrypted_with_another_passphrase_is_refused(key_pem: bytes) -> None:
    foreign = protect_private_key(key_pem, "the systems team's own passphrase")
    with pytest.raises(CertificateError) as caught:
        protect_private_key(foreign, PASSPHRASE)
    assert "another passphrase" in str(caught.value)
    assert PASSPHRASE not in str(caught.value)


def test_not_a_key_is_refused() -> None:
    with pytest.raises(CertificateError, match="not a readable PEM private key"):
        protect_private_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n", PASSPHRASE)


def test_an_archived_key_read_back_is_the_key_and_protects_to_the_same_bytes(
    key_pem: bytes,
) -> None:
    """After a kill between taking the key off the ticket and the step's end, the key is
    read back from the archive (kill point after:delete_attachment:.key)."""
    archived = protect_private_key(key_pem, PASSPHRASE)
    plain = unprotected_private_key(archived, PASSPHRASE)
    assert serialization.load_pem_private_key(plain, None).public_key() == (
        serialization.load_pem_private_key(key_pem, None).public_key()
    )
    assert protect_private_key(plain, PASSPHRASE, archived) == archived
    assert unprotected_private_key(key_pem, PASSPHRASE) is key_pem
    assert unprotected_private_key(archived, None) is archived
    with pytest.raises(CertificateError, match="another passphrase"):
        unprotected_private_key(archived, "not the passphrase")
