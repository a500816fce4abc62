"""Splitting a scan into parts: every entry in exactly one part, the same part everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from certrenew.inventory import Shard, parse_inventory
from tests.fixtures_tls import ScanLab

CERTRENEW = str(Path(sys.executable).parent / "certrenew")


def inventory_text(count: int) -> str:
    entries = "\n".join(
        f"  - {{name: c{i}, domain: c{i}.example.cat, endpoints: ['10.0.0.{i % 250 + 1}:443']}}"
        for i in range(count)
    )
    return f"defaults: {{warn_days: 40, critical_days: 5}}\ncertificates:\n{entries}\n"


@pytest.mark.parametrize("count", [1, 3, 7])
def test_the_parts_split_the_inventory_without_gap_or_overlap(count: int) -> None:
    inventory = parse_inventory(inventory_text(500))
    parts = [Shard(index, count).of(inventory) for index in range(1, count + 1)]
    names = [entry.name for part in parts for entry in part.certificates]
    assert sorted(names) == sorted(entry.name for entry in inventory.certificates)
    assert all(part.defaults == inventory.defaults for part in parts)
    if count > 1:  # a hash, not the first N: every part gets a share
        assert all(len(part.certificates) > 500 / count / 2 for part in parts)


def test_an_entry_keeps_its_part_in_every_process() -> None:
    """Python's own str hash changes per process; the part must not."""
    code = (
        "from certrenew.inventory import Shard; "
        "print([Shard(i, 5).holds(n) for n in ('seu', 'intranet', 'c42') for i in range(1, 6)])"
    )
    answers = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(answers) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x", "'x' is not a part: write i/n"),
        ("1-4", "'1-4' is not a part"),
        ("-1/4", "'-1/4' is not a part"),
        ("0/4", "with i from 1 to n"),
        ("5/4", "with i from 1 to n"),
        ("1/0", "with i from 1 to n"),
    ],
)
def test_a_wrong_part_says_how_to_write_it(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Shard.parse(text)


def test_two_parts_scanned_apart_give_the_whole_scan(scan_lab: ScanLab) -> None:
    inventory = scan_lab.inventory("expired", "soon3", "soon20", "far", "sni-a", "sni-b", "refused")
    env = {**os.environ, **scan_lab.env, "CERTRENEW_CONFIG": str(scan_lab.config(timeout=1))}

    def scan(*extra: str) -> list[dict[str, object]]:
        out = subprocess.run(
            [CERTRENEW, "scan", "--json", "--inventory", str(inventory), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return list(json.loads(out.stdout))

    whole = scan()
    first, second = scan("--shard", "1/2"), scan("--shard", "2/2")
    assert first and second
    key = lambda row: (row["name"], row["target"])  # noqa: E731
    assert sorted(first + second, key=key) == sorted(whole, key=key)
    assert not {key(row) for row in first} & {key(row) for row in second}
