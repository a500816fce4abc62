"""Bad input at the command line: every failure is one line, text from outside is plain text.

Text from outside (what an endpoint serves, what the inventory says, what a
ticket holds) must never be read as console markup nor reach the terminal
with its control characters.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.cli import app
from certrenew.lab.tls import LocalCA
from certrenew.printable import json_for_terminal, printable

# What a hostile CN or ticket may hold: a screen clear, a colour, a bell, the C1
# form of the escape (CSI), and a right-to-left override that reverses a name.
HOSTILE = "\x1b[2J\x1b[31mred\x07\x9b2Jc1\u202eevil"
TERMINAL_ACTING = ("\x1b", "\x07", "\x9b", "\u202e")


def scan(tmp_path: Path, entries: list[dict[str, object]], *options: str) -> tuple[int, str]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"certificates": entries}), encoding="utf-8")
    config = tmp_path / "certrenew.toml"
    config.write_text("[scan]\ntimeout_seconds = 1\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["scan", "-c", str(config), "-i", str(inventory), *options], env={"COLUMNS": "250"}
    )
    return result.exit_code, result.stdout


def certificate_file(folder: Path, ca: LocalCA, common_name: str) -> dict[str, object]:
    """An inventory `files` entry for a certificate (a.test, 100 days) with this CN."""
    path = folder / f"cert-{len(list(folder.glob('cert-*')))}.pem"
    path.write_bytes(ca.issue(common_name, ["a.test"], days=100).cert_pem)
    return {"path": str(path)}


def test_markup_in_a_cn_and_in_a_name_is_shown_as_written(tmp_path: Path, lab_ca: LocalCA) -> None:
    entries: list[dict[str, object]] = [
        {"name": "[/]", "domain": "a.test", "files": [certificate_file(tmp_path, lab_ca, "x")]},
        {
            "name": "oops",
            "domain": "a.test",
            "files": [certificate_file(tmp_path, lab_ca, "[/oops]")],
        },
        {
            "name": "[bold]loud",
            "domain": "a.test",
            "files": [certificate_file(tmp_path, lab_ca, "[red]x[/red]")],
        },
    ]
    code, out = scan(tmp_path, entries)
    assert code == 0, out
    for text in ("│ [/] ", "│ [/oops] ", "│ [bold]loud ", "│ [red]x[/red] "):
        assert text in out, out


def test_an_ipv6_target_keeps_its_address_in_the_table(tmp_path: Path) -> None:
    entries: list[dict[str, object]] = [
        {"name": "v6", "domain": "a.test", "endpoints": ["[fd00::1]:443"]}
    ]
    code, out = scan(tmp_path, entries)
    assert code == 3
    assert "│ [fd00::1]:443 " in out, out


def test_escape_sequences_in_a_cn_never_reach_the_terminal(tmp_path: Path, lab_ca: LocalCA) -> None:
    entries: list[dict[str, object]] = [
        {
            "name": f"name{HOSTILE}",
            "domain": "a.test",
            "files": [certificate_file(tmp_path, lab_ca, f"cn{HOSTILE}")],
        }
    ]
    code, table = scan(tmp_path, entries)
    assert code == 0, table
    assert "cn[2J[31mred2Jc1evil" in table
    _, as_json = scan(tmp_path, entries, "--json")
    for char in TERMINAL_ACTING:
        assert char not in table and char not in as_json
    [row] = json.loads(as_json)
    assert row["subject_cn"] == f"cn{HOSTILE}"  # the data itself is kept, only its spelling
    assert row["name"] == f"name{HOSTILE}"


def test_ticket_texts_are_plain_text_without_controls(tmp_path: Path) -> None:
    config = tmp_path / "certrenew.toml"
    config.write_text('data_dir = "data"\n', encoding="utf-8")
    tracker = LocalTracker(tmp_path / "data" / "tickets.sqlite3")
    key = tracker.create_ticket(
        NewTicket("SIS", f"summary [/] {HOSTILE}", f"line one\n[/b]{HOSTILE}", "r1")
    ).key
    tracker.add_comment(key, f"comment\n{HOSTILE}")
    for args in (["tickets"], ["tickets", key]):
        result = CliRunner().invoke(app, [*args, "-c", str(config)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "summary [/] " in result.stdout
        for char in TERMINAL_ACTING:
            assert char not in result.stdout
    assert "[/b][2J[31mred" in result.stdout


@pytest.mark.parametrize(
    ("text", "lines", "shown"),
    [
        ("seu.example.cat", False, "seu.example.cat"),
        ("a\x1b[2Jb", False, "a[2Jb"),
        ("one\r\ntwo\tthree", False, "one two three"),
        ("one\r\ntwo\tthree\x00", True, "one\ntwo\tthree"),
        ("\u202eevil\u2066x\u2069", False, "evilx"),
        ("\x9b31mC1\x7f", False, "31mC1"),
        ("Instal·lació ✓ 证书", False, "Instal·lació ✓ 证书"),
    ],
)
def test_printable_keeps_text_and_drops_controls(text: str, lines: bool, shown: str) -> None:
    assert printable(text, lines=lines) == shown


def test_json_for_terminal_changes_the_spelling_not_the_data() -> None:
    document = json.dumps({"cn": HOSTILE}, ensure_ascii=False)
    safe = json_for_terminal(document)
    assert json.loads(safe) == {"cn": HOSTILE}
    assert not any(char in safe for char in TERMINAL_ACTING)


def test_an_unexpected_failure_is_one_line_without_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certrenew.cli

    def broken(_: Path | None) -> None:
        raise RuntimeError("Bearer tok-secret-123 was refused")

    monkeypatch.setattr(certrenew.cli, "settings_from", broken)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 3
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: unexpected failure: RuntimeError at certrenew/cli/__init__.py:")
    assert "tok-secret-123" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["scan", "--bogus"], "No such option: --bogus (see `certrenew scan --help`)"),
        (["renew"], "Missing argument 'NAME'"),
        (["scan", "--inventory"], "requires an argument"),
    ],
)
def test_a_wrong_command_line_is_one_line_and_unknown(args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, args, prog_name="certrenew")
    assert result.exit_code == 3
    [line] = result.output.strip().splitlines()
    assert says.lower() in line.lower()
