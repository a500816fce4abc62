"""`certrenew tickets attach` / `comment`: what people do in a ticket, on the local tracker.

Each test runs the real command line against a local tracker in a temporary
data folder and reads the result back through LocalTracker.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from certrenew.adapters.tracker import AuthoredTracker, NewTicket
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.cli import app
from tests.fixtures_cli import KEY_TEXT

LOGIN = "operador-local"  # what getpass.getuser() answers, through $LOGNAME


@pytest.fixture
def tracker(config: Path) -> LocalTracker:
    """One open CSR ticket, SIS-1, with the renewal's own comment (no author)."""
    tracker = LocalTracker(config.parent / "data" / "tickets.sqlite3")
    key = tracker.create_ticket(
        NewTicket("SIS", "Generació CSR seu.example.cat", "Adjunteu CSR i clau", "r1-csr")
    ).key
    assert key == "SIS-1"
    tracker.add_comment(key, "Esperant el CSR.")
    return tracker


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    env = {"COLUMNS": "200", "NO_COLOR": "1", "LOGNAME": LOGIN, "USER": LOGIN}
    result = CliRunner().invoke(app, list(args), input=stdin, env=env)
    return result.exit_code, result.output


def test_attach_stores_each_file_with_its_author(
    tracker: LocalTracker, config: Path, tmp_path: Path
) -> None:
    csr = tmp_path / "seu.example.cat.csr"
    csr.write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"c" * 900)
    key = tmp_path / "seu.example.cat.key"
    key.write_bytes(KEY_TEXT)

    code, out = run(
        "tickets",
        "attach",
        "sis-1",
        str(csr),
        str(key),
        "--as",
        "sistemes1",
        "--config",
        str(config),
    )

    assert code == 0, out
    entries = tracker.dated_attachments("SIS-1")
    assert [e.attachment.filename for e in entries] == [csr.name, key.name]
    assert [e.author for e in entries] == ["sistemes1", "sistemes1"]
    for entry, path in zip(entries, (csr, key), strict=True):
        assert tracker.download_attachment("SIS-1", entry.attachment) == path.read_bytes()
        assert entry.attachment.size == path.stat().st_size
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line, entry in zip(lines, entries, strict=True):
        a = entry.attachment
        assert a.filename in line and f"{a.size} bytes" in line, line
        assert re.search(rf"\battachment {a.id}\b", line), line
    for secret_line in KEY_TEXT.decode().splitlines():
        assert secret_line not in out


def test_attach_defaults_to_the_login_and_show_names_the_authors(
    tracker: LocalTracker, config: Path, tmp_path: Path
) -> None:
    crt = tmp_path / "seu.example.cat.crt"
    crt.write_bytes(b"certificate the CA mailed")
    key = tmp_path / "seu.example.cat.key"
    key.write_bytes(KEY_TEXT)
    assert run("tickets", "attach", "SIS-1", str(crt), "--config", str(config))[0] == 0
    assert run("tickets", "attach", "SIS-1", str(key), "--as", "anna", "-c", str(config))[0] == 0

    assert [e.author for e in tracker.dated_attachments("SIS-1")] == [LOGIN, "anna"]
    code, out = run("tickets", "SIS-1", "--config", str(config))
    assert code == 0, out
    assert "attached by" in out
    assert re.search(rf"seu\.example\.cat\.crt +{crt.stat().st_size} bytes +{LOGIN}", out)
    assert re.search(rf"seu\.example\.cat\.key +{len(KEY_TEXT)} bytes +anna", out)
    for secret_line in KEY_TEXT.decode().splitlines():
        assert secret_line not in out


def test_comment_with_as_and_with_the_default_author(tracker: LocalTracker, config: Path) -> None:
    code, out = run(
        "tickets",
        "comment",
        "sis-1",
        "La CA és Consorci AOC.",
        "--as",
        "anna",
        "--config",
        str(config),
    )
    assert code == 0, out
    assert "SIS-1" in out and "anna" in out
    code, out = run(
        "tickets", "comment", "SIS-1", "Número de sol·licitud 4711", "--config", str(config)
    )
    assert code == 0, out

    comments = tracker.dated_comments("SIS-1")
    assert [(c.body, c.author) for c in comments] == [
        ("Esperant el CSR.", ""),
        ("La CA és Consorci AOC.", "anna"),
        ("Número de sol·licitud 4711", LOGIN),
    ]
    code, out = run("tickets", "SIS-1", "--config", str(config))
    assert code == 0, out
    shown = out.splitlines()
    dates = [
        n for n, line in enumerate(shown) if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", line)
    ]
    # The renewal's own comment has no author; people's show theirs beside the date.
    assert [shown[n].split("UTC")[1].strip() for n in dates] == ["", "anna", LOGIN]
    assert [shown[n + 1] for n in dates] == [c.body for c in comments]


def test_comment_from_standard_input(tracker: LocalTracker, config: Path) -> None:
    text = "Bon dia,\nadjunto el certificat [bold]nou[/bold].\n"
    code, out = run(
        "tickets", "comment", "SIS-1", "-", "--as", "suport", "-c", str(config), stdin=text
    )
    assert code == 0, out
    last = tracker.dated_comments("SIS-1")[-1]
    assert (last.body, last.author) == (text.rstrip(), "suport")


def test_empty_comment_is_refused(tracker: LocalTracker, config: Path) -> None:
    code, out = run("tickets", "comment", "SIS-1", "-", "-c", str(config), stdin="\n  \n")
    assert code == 3
    assert "the comment is empty" in out
    assert tracker.comments("SIS-1") == ["Esperant el CSR."]


def test_missing_file_is_one_clear_line_and_attaches_nothing(
    tracker: LocalTracker, config: Path, tmp_path: Path
) -> None:
    present = tmp_path / "seu.example.cat.csr"
    present.write_bytes(b"csr")
    missing = tmp_path / "seu.example.cat.key"

    code, out = run("tickets", "attach", "SIS-1", str(present), str(missing), "-c", str(config))

    assert code == 3
    assert "Traceback" not in out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert str(missing) in lines[0]
    assert "no such file; check the path" in lines[0]
    assert "nothing was attached to SIS-1" in lines[0]
    assert tracker.attachments("SIS-1") == []


def test_attach_to_a_missing_ticket(tracker: LocalTracker, config: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.crt"
    path.write_bytes(b"crt")
    code, out = run("tickets", "attach", "SIS-9", str(path), "-c", str(config))
    assert code == 3
    assert "ticket SIS-9 does not exist" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("action", ["attach", "comment"])
def test_on_jira_people_use_jira_itself(action: str, tmp_path: Path) -> None:
    config = tmp_path / "certrenew.toml"
    config.write_text(
        'data_dir = "data"\ntracker = "jira"\n[jira]\nurl = "https://jira.example.cat"\n',
        encoding="utf-8",
    )
    (tmp_path / "a.crt").write_bytes(b"crt")
    arg = str(tmp_path / "a.crt") if action == "attach" else "Fet."

    code, out = run("tickets", action, "SIS-1", arg, "--config", str(config))

    assert code == 3
    assert "Traceback" not in out
    assert 'tracker = "jira"' in out
    assert "in Jira itself" in out
    assert "https://jira.example.cat" in out
    assert not (tmp_path / "data").exists()  # no local tracker was opened instead


def test_listing_and_showing_keep_working_beside_the_subcommands(
    tracker: LocalTracker, config: Path
) -> None:
    code, out = run("tickets", "--label", "r1-csr", "-c", str(config))
    assert code == 0, out
    assert "SIS-1" in out and "Generació CSR seu.example.cat" in out
    code, out = run("tickets", "show", "SIS-1", "-c", str(config))
    assert code == 0, out
    assert "Esperant el CSR." in out
    code, out = run("tickets", "--help")
    assert code == 0, out
    assert "attach" in out and "comment" in out


# The schema as released before comments and attachments recorded their author.
SCHEMA_WITHOUT_AUTHOR = """
CREATE TABLE counters (project TEXT PRIMARY KEY, last_number INTEGER NOT NULL);
CREATE TABLE tickets (
    key TEXT PRIMARY KEY, project TEXT NOT NULL, number INTEGER NOT NULL,
    summary TEXT NOT NULL, description TEXT NOT NULL, status TEXT NOT NULL,
    issue_type TEXT NOT NULL, assignee TEXT, created TEXT NOT NULL, UNIQUE (project, number)
);
CREATE TABLE labels (
    key TEXT NOT NULL REFERENCES tickets (key), position INTEGER NOT NULL,
    label TEXT NOT NULL, PRIMARY KEY (key, label)
);
CREATE INDEX labels_by_label ON labels (label);
CREATE TABLE links (
    key TEXT NOT NULL REFERENCES tickets (key), other_key TEXT NOT NULL REFERENCES tickets (key),
    link_type TEXT NOT NULL, outward INTEGER NOT NULL, PRIMARY KEY (key, other_key, link_type)
);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL REFERENCES tickets (key),
    body TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL REFERENCES tickets (key),
    filename TEXT NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL, created TEXT NOT NULL
);
INSERT INTO counters VALUES ('SIS', 1);
INSERT INTO tickets VALUES ('SIS-1', 'SIS', 1, 'Generació CSR old.example.cat', 'Adjunteu',
    'Open', 'Task', NULL, '2024-05-01T08:00:00+00:00');
INSERT INTO labels VALUES ('SIS-1', 0, 'r0-csr');
INSERT INTO comments (key, body, created) VALUES ('SIS-1', 'Comentari antic',
    '2024-05-01T09:00:00+00:00');
INSERT INTO attachments (key, filename, size, data, created) VALUES ('SIS-1', 'old.csr', 3,
    X'637372', '2024-05-01T10:00:00+00:00');
"""


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def test_a_database_without_authors_is_migrated_on_open(config: Path, tmp_path: Path) -> None:
    path = config.parent / "data" / "tickets.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_WITHOUT_AUTHOR)
    db.close()
    assert "author" not in columns(path, "comments")

    tracker = LocalTracker(path)

    assert columns(path, "comments")[-1] == "author"
    assert columns(path, "attachments")[-1] == "author"
    assert isinstance(tracker, AuthoredTracker)
    # What was there reads as before, without an author.
    assert [(c.body, c.author) for c in tracker.dated_comments("SIS-1")] == [
        ("Comentari antic", "")
    ]
    [old] = tracker.dated_attachments("SIS-1")
    assert (old.attachment.filename, old.author) == ("old.csr", "")
    assert tracker.download_attachment("SIS-1", old.attachment) == b"csr"
    # Opening again finds nothing to add; the command line works on it.
    LocalTracker(path)
    crt = tmp_path / "old.example.cat.crt"
    crt.write_bytes(b"crt")
    assert run("tickets", "attach", "SIS-1", str(crt), "--as", "anna", "-c", str(config))[0] == 0
    assert run("tickets", "comment", "SIS-1", "Instal·lat", "-c", str(config))[0] == 0
    assert [e.author for e in tracker.dated_attachments("SIS-1")] == ["", "anna"]
    assert [c.author for c in tracker.dated_comments("SIS-1")] == ["", LOGIN]
    code, out = run("tickets", "SIS-1", "-c", str(config))
    assert code == 0, out
    assert "Comentari antic" in out and re.search(r"old\.csr +3 bytes", out)
