"""A ticket's history as `certrenew history` reads it, on both trackers.

On Jira it comes from the changelog (`expand=changelog`), the only place that
remembers a deleted attachment; the test server's answers are checked against
Atlassian's OpenAPI description when each test ends. On the local tracker a
deleted attachment leaves its name and dates behind, never its bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from certrenew.adapters.tracker import AuditableTracker, NewTicket, TicketTracker
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.rules import step_footer
from certrenew.tasks.history import ticket_events
from tests.fixtures_cli import KEY_TEXT


def chain(tracker: TicketTracker) -> tuple[str, str]:
    """A CSR ticket whose key was attached, then removed; an install ticket linked to it."""
    csr = tracker.create_ticket(NewTicket("SIS", "Generació CSR", "", "r-1-csr", ("r-1",)))
    install = tracker.create_ticket(NewTicket("SIS", "Instal·lació", "", "r-1-install", ("r-1",)))
    tracker.add_attachment(csr.key, "seu.csr", b"-----BEGIN CERTIFICATE REQUEST-----\n")
    key = tracker.add_attachment(csr.key, "seu.key", KEY_TEXT)
    tracker.add_comment(csr.key, "Renoveu-lo amb [CESICAT].")
    tracker.add_comment(
        csr.key, "Clau arxivada.\n\n" + step_footer("key-removed", "", "http://ui/runs/1") + "\n"
    )
    tracker.delete_attachment(csr.key, key)
    tracker.link_tickets(install.key, csr.key, "Relates")
    return csr.key, install.key


def check_history(tracker: TicketTracker) -> None:
    assert isinstance(tracker, AuditableTracker)
    csr, install = chain(tracker)
    history = tracker.ticket_history(csr)
    assert history.ticket.key == csr
    changes = [(c.filename, c.removed) for c in history.attachments]
    assert changes == [("seu.csr", False), ("seu.key", False), ("seu.key", True)]
    assert [c.at for c in history.attachments] == sorted(c.at for c in history.attachments)
    assert [(link.link.other_key, link.link.outward) for link in history.links] == [
        (install, False)
    ]
    assert history.links[0].created is not None

    events = ticket_events(history) + ticket_events(tracker.ticket_history(install))
    [link] = [e for e in events if e.kind == "link"]
    assert (link.where, link.what) == (install, f"linked to {csr} (Relates)")
    [removal] = [e for e in events if e.kind == "attachment-removed"]
    assert removal.what == "removed seu.key" and removal.at >= history.created
    [marked] = [e for e in events if e.step]
    assert (marked.step, marked.link, marked.what) == (
        "key-removed",
        "http://ui/runs/1",
        "Clau arxivada.",
    )
    assert any(e.what == "Renoveu-lo amb [CESICAT]." and not e.step for e in events)


def test_local_tracker_keeps_removed_attachments_without_their_bytes(tmp_path: Path) -> None:
    tracker = LocalTracker(tmp_path / "tickets.sqlite3")
    check_history(tracker)
    [csr] = tracker.find_tickets("r-1-csr")
    assert [a.filename for a in tracker.attachments(csr.key)] == ["seu.csr"]


@pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
def test_jira_history_comes_from_the_changelog(jira_tracker: JiraTracker) -> None:
    check_history(jira_tracker)
