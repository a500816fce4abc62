"""The sweep finds a secret wherever it is planted, whole or one PEM line at a time."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from certrenew.lab.tls import new_key
from tests.secret_sweep import found, needles


def pem_key() -> bytes:
    return new_key("rsa").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_a_planted_key_line_or_token_is_found_and_named() -> None:
    key = pem_key()
    one_line = needles(key)[3].decode()
    secrets: dict[str, str | bytes] = {"key": key, "token": "tok-123456"}
    places: dict[str, str | bytes] = {
        "log": f"comment with {one_line} in it",
        "db": b"...tok-123456...",
        "clean": "nothing here",
    }
    assert found(secrets, places) == ["key in log", "token in db"]
    assert found(secrets, {"clean": "BEGIN PRIVATE KEY"}) == []  # the armour is not the secret
