"""What the command-line tests share: a configuration using the local tracker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pki import key_pem, rsa_key

KEY_TEXT = key_pem(rsa_key())  # a real key, made at test time


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration file whose tickets live in the local tracker under tmp_path/data."""
    path = tmp_path / "certrenew.toml"
    path.write_text('data_dir = "data"\ntracker = "local"\n', encoding="utf-8")
    return path
