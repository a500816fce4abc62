"""Files that hold key material are the owner's alone and gone when done; attachments are bounded.

Real renewal steps (`.fn`, as tests/test_steps.py calls them) on the local
tracker and archive, and on the Jira test server through the `jira` library.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from certrenew.adapters.tracker import NewTicket, read_limited, too_large
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.adapters.wiring import renewal_context
from certrenew.config import JiraSettings, load_settings
from certrenew.errors import AttachmentTooLarge
from certrenew.lab.jira_server import JiraServer
from certrenew.lab.tls import LocalCA, build_csr
from certrenew.renewal import RenewalTickets
from certrenew.tasks.archiving import archive_artifacts
from certrenew.tasks.tickets import (
    collect_certificate,
    collect_csr_and_key,
    open_csr_ticket,
    open_service_owner_ticket,
)
from tests.fixtures_jira import FAST_RETRIES
from tests.fixtures_renewal import example_config, renewal_start

DOMAIN = "seu.example.cat"
LIMIT = 64 * 1024
# What an oversized attachment's refusal must say: what is wrong and what to do.
REFUSAL_WORDS = ("larger than 64 KiB", "tickets.max_attachment_bytes", "attach the right file")


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask: files not made 0600 on purpose would be world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def settings_file(tmp_path: Path, **changes: object) -> Path:
    return example_config(
        tmp_path / "certrenew.toml",
        data_dir=str(tmp_path / "data"),
        renewal={"attachment_poll_minutes": 0},
        tickets={"max_attachment_bytes": LIMIT},
        local_archive={"path": str(tmp_path / "archive")},
        **changes,
    )




def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def key_marker(key_pem: bytes) -> bytes:
    """A line from the middle of the key: found in a file only if the key's bytes are there."""
    lines = key_pem.splitlines()
    return lines[len(lines) // 2]


def test_a_renewal_leaves_key_files_0600_and_no_key_bytes_in_the_tracker(
    tmp_path: Path, loose_umask: None, request: pytest.FixtureRequest
) -> None:
    """Steps 1, 4 and 5 on the local tracker and archive, as configured (no adapter handed in)."""
    ctx = renewal_context(load_settings(settings_file(tmp_path)), notice_channels=[])
    assert isinstance(ctx.tracker, LocalTracker) and ctx.tracker.max_attachment_bytes == LIMIT
    database = tmp_path / "data" / "tickets.sqlite3"
    # Another process with the database open (the CLI, the demo's people) keeps the
    # write-ahead log and shared-memory files in place.
    held = sqlite3.connect(database)
    request.addfinalizer(held.close)
    held.execute("SELECT count(*) FROM tickets").fetchall()
    start = renewal_start(DOMAIN)
    ticket = open_csr_ticket.fn(ctx, start)
    csr_pem, key_pem = build_csr(ctx.subject.rules(), DOMAIN)
    ctx.tracker.add_attachment(ticket, "seu.csr", csr_pem)
    ctx.tracker.add_attachment(ticket, "seu.key", key_pem)
    csr = collect_csr_and_key.fn(ctx, start, ticket, {}, 1)
    assert not isinstance(csr, str), csr
    tickets = RenewalTickets(owner=open_service_owner_ticket.fn(ctx, start), csr=ticket)
    crt = LocalCA("key files test CA").sign_csr(csr_pem, days=90).decode()
    issued = collect_certificate.fn(ctx, start, csr, tickets, {"certificate_pem": crt}, 1)
    assert not isinstance(issued, str), issued

    journals = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    assert {p.name for p in journals} == {database.name + end for end in ("", "-wal", "-shm")}
    assert {p.name: mode(p) for p in journals} == {p.name: 0o600 for p in journals}
    on_disk = b"".join(p.read_bytes() for p in journals)
    assert key_marker(key_pem) in on_disk  # the key waits on the ticket until archived

    archived = archive_artifacts.fn(ctx, start, csr, issued, "CESICAT", tickets)

    folder = Path(archived.location)
    key_file = folder / f"{DOMAIN}.key"
    assert key_file.read_bytes() == key_pem
    assert {p.name: mode(p) for p in folder.iterdir()} == {
        p.name: 0o600 for p in folder.iterdir()
    }
    assert not [p for p in folder.iterdir() if p.name.startswith(".upload-")]
    assert "seu.key" not in {a.filename for a in ctx.tracker.attachments(ticket)}
    leftovers = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    on_disk = b"".join(p.read_bytes() for p in leftovers)
    assert key_marker(key_pem) not in on_disk
    assert key_marker(key_pem) not in base64.b64encode(on_disk)
    assert {p.name: mode(p) for p in leftovers} == {p.name: 0o600 for p in leftovers}


def test_a_tracker_database_made_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    LocalTracker(path)
    os.chmod(path, 0o644)
    LocalTracker(path)
    assert mode(path) == 0o600


def test_an_oversized_attachment_is_refused_and_the_csr_step_asks_again(
    tmp_path: Path,
) -> None:
    ctx = renewal_context(load_settings(settings_file(tmp_path)), notice_channels=[])
    start = renewal_start(DOMAIN)
    ticket = open_csr_ticket.fn(ctx, start)
    ctx.tracker.add_attachment(ticket, "seu.key", b"\0" * (LIMIT + 1))

    problem = collect_csr_and_key.fn(ctx, start, ticket, {}, 1)

    assert isinstance(problem, str)
    for words in (f"seu.key on {ticket}", *REFUSAL_WORDS):
        assert words in problem
    assert any(problem in comment for comment in ctx.tracker.comments(ticket))
    csr_pem, key_pem = build_csr(ctx.subject.rules(), DOMAIN)
    ctx.tracker.add_attachment(ticket, "seu.csr", csr_pem)
    ctx.tracker.add_attachment(ticket, "seu.key", key_pem)
    accepted = collect_csr_and_key.fn(ctx, start, ticket, {}, 2)
    assert not isinstance(accepted, str), accepted


def test_an_oversized_attachment_on_jira_is_refused_unread_and_step_4_asks_again(
    tmp_path: Path, jira_server: JiraServer
) -> None:
    """The `jira` library against the test server: the certificate step names the file,
    never fetches its content, and takes the right certificate once it is given."""
    settings = load_settings(settings_file(tmp_path))
    jira = settings.jira.model_copy(
        update={"url": jira_server.url, "token": SecretStr(jira_server.token or ""), **FAST_RETRIES}
    )
    settings = settings.model_copy(update={"tracker": "jira", "jira": jira})
    ctx = renewal_context(settings, notice_channels=[])
    assert isinstance(ctx.tracker, JiraTracker) and ctx.tracker.max_attachment_bytes == LIMIT
    start = renewal_start(DOMAIN)
    ticket = open_csr_ticket.fn(ctx, start)
    csr_pem, key_pem = build_csr(ctx.subject.rules(), DOMAIN)
    ctx.tracker.add_attachment(ticket, "seu.csr", csr_pem)
    ctx.tracker.add_attachment(ticket, "seu.key", key_pem)
    csr = collect_csr_and_key.fn(ctx, start, ticket, {}, 1)
    assert not isinstance(csr, str), csr
    tickets = RenewalTickets(owner=open_service_owner_ticket.fn(ctx, start), csr=ticket)
    big = ctx.tracker.add_attachment(ticket, "certificat.crt", b"A" * (LIMIT * 4))

    problem = collect_certificate.fn(ctx, start, csr, tickets, {}, 1)

    assert isinstance(problem, str)
    for words in (f"certificat.crt on {ticket}", "256 KiB or more", *REFUSAL_WORDS):
        assert words in problem
    content = (f"/attachment/content/{big.id}", f"/secure/attachment/{big.id}/")
    assert not [e.path for e in jira_server.exchanges if e.path.endswith(content[0])]
    assert not [e.path for e in jira_server.exchanges if content[1] in e.path]
    crt = LocalCA("key files test CA").sign_csr(csr_pem, days=90)
    ctx.tracker.add_attachment(ticket, "seu.crt", crt)
    issued = collect_certificate.fn(ctx, start, csr, tickets, {}, 2)
    assert not isinstance(issued, str), issued


def test_a_download_without_a_true_size_is_read_only_up_to_the_limit() -> None:
    """A body whose length was not declared stops being read at the limit."""
    read: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            read.append(1)
            yield b"x" * 1000

    with pytest.raises(AttachmentTooLarge) as refused:
        read_limited(endless(), 10_000, lambda size: too_large("SIS-1", "big.crt", size, 10_000))
    assert len(read) == 11
    assert "big.crt on SIS-1 is larger than 10 KiB" in str(refused.value)
    assert read_limited(iter([b"ab", b"cd"]), 4, lambda size: AssertionError(size)) == b"abcd"


def test_a_jira_attachment_whose_listed_size_lies_is_refused_by_its_content_length(
    jira_server: JiraServer,
) -> None:
    """Jira lists 10 bytes; the content's Content-Length says 200 KiB: refused before reading."""
    settings = JiraSettings(url=jira_server.url, token=SecretStr(jira_server.token or ""))
    tracker = JiraTracker.from_settings(settings, max_attachment_bytes=LIMIT)
    key = tracker.create_ticket(NewTicket("SIS", "CSR", "", "size-lies")).key
    big = tracker.add_attachment(key, "seu.csr", b"C" * 200 * 1024)
    small = tracker.add_attachment(key, "seu.key", b"K" * 100)

    def understated(method: str, path: str, payload: Any) -> Any:
        if method == "GET" and path.endswith(f"/attachment/{big.id}"):
            payload["size"] = 10
        return payload

    jira_server.tamper = understated
    with pytest.raises(AttachmentTooLarge) as refused:
        tracker.download_attachment(key, big)
    assert f"seu.csr on {key} is larger than 64 KiB (200 KiB or more)" in str(refused.value)
    assert tracker.download_attachment(key, small) == b"K" * 100
