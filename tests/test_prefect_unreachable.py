"""Commands that need the Prefect API say so in one line, whether it refuses or never answers.

Each command runs in a process of its own: Prefect reads its settings once, at
import. The silent server accepts connections (the kernel's backlog) and never
says a word, as a hung server or a black-holing proxy does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from certrenew.lab.inventory import inventory_entry, write_inventory
from tests.fixtures_tls import refused_port, silent_port

CERTRENEW = str(Path(sys.executable).with_name("certrenew"))


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    with ExitStack() as stack:
        yield {"refused": refused_port(stack), "silent": silent_port(stack)}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    inventory = tmp_path / "inventory.yaml"
    write_inventory(inventory, [inventory_entry("seu", "seu.example.cat", "127.0.0.1:443")])
    path = tmp_path / "certrenew.toml"
    path.write_text(f'inventory = "{inventory}"\ndata_dir = "data"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("command", "server", "says"),
    [
        (["renew", "seu"], "refused", "refused the connection (nothing listens there?)"),
        (["renew", "seu"], "silent", "did not answer within 10 s (the connection was accepted)"),
        (["serve"], "refused", "refused the connection (nothing listens there?)"),
        (["serve"], "silent", "did not answer within 10 s (the connection was accepted)"),
        (["history", "seu"], "silent", "did not answer within 10 s"),
    ],
)
def test_an_unreachable_prefect_api_is_one_line(
    config: Path, ports: dict[str, int], command: list[str], server: str, says: str
) -> None:
    api = f"http://127.0.0.1:{ports[server]}/api"
    result = subprocess.run(
        [CERTRENEW, *command, "--config", str(config)],
        env={**os.environ, "PREFECT_API_URL": api},
        capture_output=True,
        text=True,
        timeout=180,  # a guard for the test run only: the command gives up after 10 s
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the Prefect API at {api} {says}"), line
    assert "PREFECT_API_URL" in line
    assert result.stdout == ""
