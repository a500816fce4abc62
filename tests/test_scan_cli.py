"""`certrenew scan` against the loopback lab: every JSON field, the table, the exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from rich.console import Console
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.inventory import parse_inventory
from certrenew.scan_report import PROGRESS_MIN_TARGETS, scan_with_progress
from tests.fixtures_tls import Case, ScanLab

CERTRENEW = str(Path(sys.executable).parent / "certrenew")
JSON_KEYS = (
    "name", "domain", "target", "kind", "not_after", "days_left", "status",
    "subject_cn", "sans", "issuer", "serial", "sha256", "covers_domain", "error", "note",
)  # fmt: skip
CASES = [
    "expired",
    "soon3",
    "soon20",
    "far",
    "selfsigned",
    "sni-a",
    "sni-b",
    "mismatch",
    "ipv6",
    "file-pem",
    "file-der",
    "file-p12",
    "file-p12-wrong",
    "file-corrupt",
    "refused",
    "silent",
    "plain-http",
]


@pytest.fixture(scope="module")
def full_scan(scan_lab: ScanLab) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, once, over the whole lab."""
    return subprocess.run(
        [CERTRENEW, "scan", "--json", "--inventory", str(scan_lab.inventory())],
        env={**os.environ, **scan_lab.env, "CERTRENEW_CONFIG": str(scan_lab.config(timeout=1))},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def by_name(full_scan: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    rows = json.loads(full_scan.stdout)
    return {row["name"]: row for row in rows}


def lab_case(scan_lab: ScanLab, name: str) -> Case:
    if name not in scan_lab.cases:
        pytest.skip(f"{name}: this machine has no IPv6 loopback (::1)")
    return scan_lab.cases[name]


@pytest.mark.parametrize("name", CASES)
def test_json_fields_match_the_generated_certificate(
    scan_lab: ScanLab, by_name: dict[str, dict[str, Any]], name: str
) -> None:
    case = lab_case(scan_lab, name)
    row = by_name[name]
    assert tuple(row) == JSON_KEYS
    assert (row["domain"], row["target"], row["kind"]) == (case.domain, case.target, case.kind)
    assert row["status"] == case.status
    if case.leaf is None:
        assert case.error is not None and case.error in row["error"]
        assert row["not_after"] is row["days_left"] is row["serial"] is row["sha256"] is None
        assert row["covers_domain"] is None and row["sans"] == []
        return
    cert = case.leaf.certificate
    assert row["error"] is None
    assert int(row["serial"], 16) == cert.serial_number
    assert row["serial"] == row["serial"].upper()
    assert row["sha256"] == hashlib.sha256(case.leaf.der).hexdigest()
    assert row["sans"] == list(case.sans)
    assert datetime.fromisoformat(row["not_after"]) == cert.not_valid_after_utc
    assert row["days_left"] == case.days_left
    assert row["covers_domain"] is case.covers
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert row["subject_cn"] == cn
    assert row["issuer"] == cert.issuer.rfc4514_string()


def test_self_signed_certificate_names_itself_as_issuer(by_name: dict[str, dict[str, Any]]) -> None:
    assert by_name["selfsigned"]["issuer"] == "CN=selfsigned.lab.test"
    assert by_name["far"]["issuer"] == "CN=certrenew test CA"


def test_sni_selects_each_certificate_on_one_port(by_name: dict[str, dict[str, Any]]) -> None:
    a, b = by_name["sni-a"], by_name["sni-b"]
    assert a["target"] == b["target"]
    assert (a["subject_cn"], b["subject_cn"]) == ("sni-a.lab.test", "sni-b.lab.test")


def test_full_scan_sorts_soonest_first_and_exits_critical(
    full_scan: subprocess.CompletedProcess[str],
) -> None:
    rows = json.loads(full_scan.stdout)
    checked = [r for r in rows if r["status"] != "error"]
    assert rows[: len(rows) - len(checked)] == [r for r in rows if r["status"] == "error"]
    assert [r["not_after"] for r in checked] == sorted(r["not_after"] for r in checked)
    assert full_scan.returncode == 2, full_scan.stderr


def test_pkcs12_passwords_never_reach_the_output(
    scan_lab: ScanLab, full_scan: subprocess.CompletedProcess[str]
) -> None:
    output = full_scan.stdout + full_scan.stderr
    assert scan_lab.p12_password not in output
    assert scan_lab.wrong_password not in output


def test_the_table_never_shows_a_pkcs12_password(
    scan_lab: ScanLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in scan_lab.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "300")
    inventory = scan_lab.inventory("file-p12", "file-p12-wrong")
    result = CliRunner().invoke(app, ["scan", "--inventory", str(inventory)])
    assert result.exit_code == 2
    assert "the PKCS#12 password is wrong" in result.stdout
    assert scan_lab.p12_password not in result.output
    assert scan_lab.wrong_password not in result.output


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("far", "selfsigned"), 0),
        (("far", "soon20"), 1),
        (("far", "refused"), 3),
        (("soon20", "refused"), 3),  # could not check one: worse than a warning
        (("soon3", "refused"), 2),  # critical beats could-not-check
        (("expired", "far"), 2),
        (("mismatch",), 2),  # a certificate clients refuse is an outage now
    ],
)
def test_exit_codes_follow_the_monitoring_plugin_convention(
    scan_lab: ScanLab, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...], expected: int
) -> None:
    monkeypatch.delenv("CERTRENEW_CONFIG", raising=False)
    result = CliRunner().invoke(
        app, ["scan", "--json", "--inventory", str(scan_lab.inventory(*names))]
    )
    assert result.exit_code == expected, result.output
    assert sorted(r["name"] for r in json.loads(result.stdout)) == sorted(names)


def test_table_lists_soonest_first_with_a_summary(
    scan_lab: ScanLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    inventory = scan_lab.inventory("far", "soon20", "expired", "soon3", "refused", "mismatch")
    result = CliRunner().invoke(app, ["scan", "--inventory", str(inventory)])
    assert result.exit_code == 2
    out = result.stdout
    order = ["refused", "expired", "soon3", "soon20", "mismatch", "far"]
    positions = [out.index(f" {name} ") for name in order]
    assert positions == sorted(positions), out
    assert "connection refused" in out
    assert "does not cover mismatch.lab.test" in out
    assert "6 targets: 1 expired, 2 critical, 1 warning, 1 ok, 1 error" in out


def test_inventory_defaults_to_the_configured_one(
    scan_lab: ScanLab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "certrenew.toml"
    config.write_text(f'inventory = "{scan_lab.inventory("far")}"\n', encoding="utf-8")
    monkeypatch.delenv("CERTRENEW_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["scan", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == ["far"]


def test_missing_inventory_is_one_actionable_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "--inventory", str(tmp_path / "none.yaml")])
    assert result.exit_code == 3
    [line] = result.stdout.splitlines()  # the monitor's status line: UNKNOWN and why
    assert line.startswith("CERTRENEW UNKNOWN - inventory ")
    assert "does not exist: pass --inventory" in line
    assert "Traceback" not in result.output


def test_long_scans_show_progress_on_a_terminal(scan_lab: ScanLab) -> None:
    far = scan_lab.cases["far"].target
    inventory = parse_inventory(
        yaml.safe_dump(
            {
                "certificates": [
                    {"name": f"far-{i}", "domain": "far.lab.test", "endpoints": [far]}
                    for i in range(PROGRESS_MIN_TARGETS)
                ]
            }
        )
    )
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    results = scan_with_progress(inventory, concurrency=8, timeout=5, console=terminal)
    assert [r.status for r in results] == ["ok"] * PROGRESS_MIN_TARGETS
    assert f"{PROGRESS_MIN_TARGETS}/{PROGRESS_MIN_TARGETS}" in screen.getvalue()
