"""`certrenew tickets`: the chain as a person reads it, through the real command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from certrenew.adapters.tracker import NewTicket, TicketTracker
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.cli import app
from certrenew.cli.ticket_view import ticket_detail, ticket_table
from certrenew.errors import TrackerError
from tests.fixtures_cli import KEY_TEXT


@pytest.fixture
def chain(config: Path) -> LocalTracker:
    """A renewal's three tickets as the flow leaves them, in the configured data folder."""
    tracker = LocalTracker(config.parent / "data" / "tickets.sqlite3")
    csr = tracker.create_ticket(
        NewTicket(
            "SIS",
            "Generació CSR seu.example.cat",
            "Bon dia,\nnecessitem el CSR [bold]i la clau[/bold].",
            "certrenew-r1-csr",
            ("certrenew",),
        )
    ).key
    owner = tracker.create_ticket(
        NewTicket("ST", "Quina CA renova seu.example.cat?", "Hola", "certrenew-r1-owner")
    ).key
    install = tracker.create_ticket(
        NewTicket("SIS", "Instal·lació seu.example.cat", "Instal·leu", "certrenew-r1-install")
    ).key
    tracker.link_tickets(install, csr, "Relates")
    tracker.link_tickets(install, owner, "Relates")
    tracker.add_comment(csr, "CSR i clau rebuts.")
    tracker.add_comment(csr, "Clau arxivada; adjunt esborrat.")
    tracker.add_attachment(csr, "seu.example.cat.csr", b"c" * 1234)
    tracker.add_attachment(csr, "seu.example.cat.key", KEY_TEXT)
    tracker.close_ticket(csr)
    return tracker


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


def test_list_shows_the_chain(chain: LocalTracker, config: Path) -> None:
    code, out = run("tickets", "--config", str(config))
    assert code == 0, out
    lines = [line for line in out.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["SIS-1", "ST-1", "SIS-2"]
    assert "Done" in lines[0]
    assert "Generació CSR seu.example.cat" in lines[0]
    assert "certrenew-r1-csr, certrenew" in lines[0]
    assert "← SIS-2 (Relates)" in lines[0]
    assert "→ SIS-1 (Relates), → ST-1 (Relates)" in lines[2]


def test_label_filters(chain: LocalTracker, config: Path) -> None:
    code, out = run("tickets", "--label", "certrenew-r1-owner", "--config", str(config))
    assert code == 0, out
    assert "ST-1" in out
    assert "SIS-1" not in out.replace("← SIS-2", "")


def test_one_ticket_tells_its_story_without_attachment_contents(
    chain: LocalTracker, config: Path
) -> None:
    code, out = run("tickets", "sis-1", "--config", str(config))
    assert code == 0, out
    assert "SIS-1  Generació CSR seu.example.cat  Done" in out
    assert "necessitem el CSR [bold]i la clau[/bold]." in out  # ticket text is not markup
    assert "← SIS-2 (Relates)" in out
    assert out.index("CSR i clau rebuts.") < out.index("Clau arxivada; adjunt esborrat.")
    assert re.search(r"seu\.example\.cat\.csr +1234 bytes", out)
    assert re.search(rf"seu\.example\.cat\.key +{len(KEY_TEXT)} bytes", out)
    assert "c" * 100 not in out
    for line in KEY_TEXT.decode().splitlines():
        assert line not in out
    assert chain.url("SIS-1") in out


def test_missing_ticket_is_one_clear_line(chain: LocalTracker, config: Path) -> None:
    code, out = run("tickets", "SIS-77", "--config", str(config))
    assert code == 3
    assert "ticket SIS-77 does not exist" in out
    assert "Traceback" not in out


def test_empty_tracker(config: Path) -> None:
    code, out = run("tickets", "--config", str(config))
    assert (code, out.strip()) == (0, "No tickets yet.")


PROTOCOL_METHODS = {name for name in vars(TicketTracker) if not name.startswith("_")}


class ProtocolOnly:
    """The local tracker seen through the TicketTracker methods alone, as Jira offers them."""

    def __init__(self, tracker: LocalTracker) -> None:
        self._tracker = tracker

    def __getattr__(self, name: str) -> object:
        if name not in PROTOCOL_METHODS:
            raise AttributeError(name)
        return getattr(self._tracker, name)


def test_view_of_a_tracker_without_browsing(chain: LocalTracker) -> None:
    from rich.console import Console

    tracker = ProtocolOnly(chain)
    assert isinstance(tracker, TicketTracker)
    console = Console(width=200, record=True)
    with pytest.raises(TrackerError, match="pass --label"):
        ticket_table(tracker)
    console.print(ticket_table(tracker, "certrenew-r1-install"))
    console.print(ticket_detail(tracker, "SIS-1"))
    out = console.export_text()
    assert "SIS-1 (Relates), ST-1 (Relates)" in out
    assert "#1\nCSR i clau rebuts." in out
    assert "Description" not in out
