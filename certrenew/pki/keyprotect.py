"""Optional protection of the archived private key: PKCS#8 encrypted with a passphrase.

The passphrase lives in the team's secret store, not beside the key, so a
person who can read the SharePoint folder still cannot use the key. PKCS#8
encryption is salted: the same key gives different bytes on every call. To keep
re-archiving a no-op, the key already in the archive is reused when it holds
the same key under the same passphrase.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from certrenew.pki.errors import CertificateError


def protect_private_key(pem: bytes, passphrase: str | None, archived: bytes | None = None) -> bytes:
    """`pem` encrypted with `passphrase` (unchanged without one); `archived` when it already is.

    A key that is already encrypted with this passphrase is returned as it is.
    """
    if passphrase is None:
        return pem
    secret = passphrase.encode()
    key, encrypted = _load(pem, secret)
    if encrypted:
        return pem
    if archived is not None and _same_key(archived, secret, key):
        return archived
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )


def unprotected_private_key(pem: bytes, passphrase: str | None) -> bytes:
    """The archived key as the systems team gave it: decrypted when it was archived encrypted.

    A key read back from the archive (an interrupted archive, a reused CSR) is
    checked against its CSR like one read from the ticket, and protected again
    with `protect_private_key`, which then finds the archived bytes unchanged.
    """
    if passphrase is None:
        return pem
    key, encrypted = _load(pem, passphrase.encode())
    if not encrypted:
        return pem
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(pem: bytes, secret: bytes) -> tuple[PrivateKeyTypes, bool]:
    """The key, and whether `pem` is already encrypted (then with `secret`)."""
    try:
        return serialization.load_pem_private_key(pem, None), False
    except TypeError:
        pass  # encrypted: maybe with our passphrase already
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(
            "the .key is not a readable PEM private key: ask the systems team for the file again"
        ) from None
    try:
        return serialization.load_pem_private_key(pem, secret), True
    except ValueError:
        raise CertificateError(
            "the .key is already encrypted with another passphrase: ask the systems team for "
            "the unencrypted key, or unset sharepoint.key_passphrase to archive it as it is"
        ) from None


def _same_key(archived: bytes, secret: bytes, key: PrivateKeyTypes) -> bool:
    try:
        stored = serialization.load_pem_private_key(archived, secret)
    except (TypeError, ValueError):
        return False
    return _der(stored) == _der(key)


def _der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
