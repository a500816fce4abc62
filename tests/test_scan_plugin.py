"""`certrenew scan` as a Nagios/Icinga plugin, per the Monitoring Plugins guidelines.

The first line of standard output is the status line a monitor shows, with
performance data after '|'; then the table, whose lines are never cut when the
output is not a terminal; a scan that could not run is UNKNOWN (3); the exit
code survives a reader that stops early.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.lab.tls import LocalCA

CERTRENEW = str(Path(sys.executable).with_name("certrenew"))
# One performance-data item: 'label'=value;warn;crit (guidelines, section 2.6).
PERFDATA = re.compile(r"'([^'=]+)'=(-?\d+|U);(\d+):;(\d+):")


def certificate(folder: Path, ca: LocalCA, name: str, days: float) -> str:
    path = folder / f"{name}.pem"
    path.write_bytes(ca.issue(f"{name}.test", [f"{name}.test"], days=days).cert_pem)
    return str(path)


def inventory(folder: Path, entries: list[dict[str, object]]) -> Path:
    path = folder / "inventory.yaml"
    data = {"defaults": {"warn_days": 30, "critical_days": 7}, "certificates": entries}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def entry(name: str, *files: str, **extra: object) -> dict[str, object]:
    return {"name": name, "domain": f"{name}.test", "files": [{"path": f} for f in files], **extra}


@pytest.fixture
def mixed(tmp_path: Path, lab_ca: LocalCA) -> Path:
    """One expired, two warning (one with its own thresholds), one unchecked, one ok."""
    return inventory(
        tmp_path,
        [
            entry("old", certificate(tmp_path, lab_ca, "old", -2.5)),
            entry("soon", certificate(tmp_path, lab_ca, "soon", 20.5)),
            entry(
                "strict",
                certificate(tmp_path, lab_ca, "strict", 50.5),
                warn_days=60,
                critical_days=14,
            ),
            entry("gone", str(tmp_path / "missing.pem")),
            entry("fine", certificate(tmp_path, lab_ca, "fine", 200.5)),
        ],
    )


def run_scan(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["scan", *args])
    return result.exit_code, result.stdout


def test_the_first_line_is_the_monitor_status_line_with_days_left_per_target(
    mixed: Path, tmp_path: Path
) -> None:
    code, out = run_scan("-i", str(mixed))
    assert code == 2
    status, rest = out.split("\n", 1)
    text, perfdata = status.split(" | ")
    assert text == "CERTRENEW CRITICAL - 1 expired, 2 warning, 1 unchecked"
    items = {label: (value, warn, crit) for label, value, warn, crit in PERFDATA.findall(perfdata)}
    assert PERFDATA.sub("", perfdata).strip() == "", perfdata
    assert items == {
        f"old {tmp_path}/old.pem": ("-3", "30", "7"),
        f"soon {tmp_path}/soon.pem": ("20", "30", "7"),
        f"strict {tmp_path}/strict.pem": ("50", "60", "14"),
        f"gone {tmp_path}/missing.pem": ("U", "30", "7"),
        f"fine {tmp_path}/fine.pem": ("200", "30", "7"),
    }
    assert rest.startswith("Certificate expiry (soonest first)")
    assert "|" not in rest  # Nagios would read anything after a '|' as performance data


def test_all_ok_says_which_expires_first(tmp_path: Path, lab_ca: LocalCA) -> None:
    path = inventory(
        tmp_path,
        [
            entry("a", certificate(tmp_path, lab_ca, "a", 90.5)),
            entry("b", certificate(tmp_path, lab_ca, "b", 45.5)),
        ],
    )
    code, out = run_scan("-i", str(path))
    assert code == 0
    assert out.splitlines()[0].startswith(
        "CERTRENEW OK - all 2 targets ok; the soonest expires in 45 days (b) | 'b "
    )


def test_piped_output_keeps_whole_lines(
    tmp_path: Path, lab_ca: LocalCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    long_name = "intranet-" + "x" * 150
    served = certificate(tmp_path, lab_ca, "a", 90.5)
    path = inventory(tmp_path, [entry(long_name, served, domain="a.test")])
    code, out = run_scan("-i", str(path))
    assert code == 0
    [row] = [line for line in out.splitlines()[1:] if " ok " in line]
    assert f"│ {long_name} │ {served} │ a.test " in row


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("certificates: []\n", "the inventory lists no certificate, so nothing was checked"),
        ("", "the inventory lists no certificate, so nothing was checked"),
        ("certificates: [{name: a}]\n", "certificates[0] (a).domain: Field required"),
    ],
)
def test_a_scan_that_cannot_run_is_unknown_on_the_status_line(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", "-i", str(path)])
    assert result.exit_code == 3
    [line] = result.stdout.splitlines()
    assert line.startswith(f"CERTRENEW UNKNOWN - {path}") and says in line, line
    assert "|" not in line


def test_a_missing_configuration_is_unknown_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "-c", str(tmp_path / "none.toml")])
    assert result.exit_code == 3
    assert result.stdout.startswith("CERTRENEW UNKNOWN - configuration file ")


def test_with_json_the_failure_stays_off_standard_output(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("certificates: []\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", "--json", "-i", str(path)])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "lists no certificate" in result.stderr


def test_the_exit_code_survives_a_reader_that_stops_early(tmp_path: Path, lab_ca: LocalCA) -> None:
    """`certrenew scan | head -1` in a real shell: the check's code, not 1 (or 120).

    The output is far larger than a pipe holds, so the scan is still writing
    when `head` leaves: its next write meets the closed pipe.
    """
    expired = certificate(tmp_path, lab_ca, "old", -2.5)
    path = inventory(tmp_path, [entry(f"c{n:04}", expired) for n in range(1500)])
    script = f"set -o pipefail; '{CERTRENEW}' scan -i '{path}' | head -1"
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("CERTRENEW CRITICAL - 1500 expired | 'c0000 ")
    assert result.stderr == ""


def test_a_missing_password_variable_leaves_that_target_unchecked(
    tmp_path: Path, lab_ca: LocalCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERTRENEW_TEST_SEAL_PASSWORD", raising=False)
    sealed = {"path": certificate(tmp_path, lab_ca, "seal", 90.5)}
    sealed["password_env"] = "CERTRENEW_TEST_SEAL_PASSWORD"
    path = inventory(tmp_path, [{"name": "seal", "domain": "seal.test", "files": [sealed]}])
    result = CliRunner().invoke(app, ["scan", "-i", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 3
    assert result.stdout.startswith("CERTRENEW UNKNOWN - 1 unchecked | 'seal ")
    assert "the password variable CERTRENEW_TEST_SEAL_PASSWORD is not set" in result.stdout
