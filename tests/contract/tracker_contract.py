"""What every ticket tracker must do for the renewal runbook."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from certrenew.adapters.tracker import Link, NewTicket, TicketTracker, ensure_ticket
from certrenew.errors import TicketNotFound

_counter = itertools.count()


def new_ticket(project: str, label: str | None = None, **changes: Any) -> NewTicket:
    label = label or f"certrenew-contract-{next(_counter)}"
    fields: dict[str, Any] = {
        "project": project,
        "summary": "Generació CSR seu.example.cat",
        "description": "Bon dia companys,\nnecessitaríem el CSR per a seu.example.cat.",
        "label": label,
        "labels": ("certrenew", "certrenew-r-seu-example-cat-0a1b"),
    }
    fields.update(changes)
    return NewTicket(**fields)


class TrackerContract:
    """Subclasses provide a `tracker` fixture and set `project` to a key the tracker accepts."""

    project = "SIS"
    other_project = "ST"

    def test_create_then_get(self, tracker: TicketTracker) -> None:
        created = tracker.create_ticket(new_ticket(self.project, label="certrenew-x-csr"))
        assert created.key.startswith(f"{self.project}-")
        assert created.key.split("-")[1].isdigit()
        fetched = tracker.get_ticket(created.key)
        assert fetched.key == created.key
        assert fetched.summary == "Generació CSR seu.example.cat"
        assert {"certrenew-x-csr", "certrenew", "certrenew-r-seu-example-cat-0a1b"} <= set(
            fetched.labels
        )
        assert fetched.status

    def test_keys_are_distinct_per_ticket(self, tracker: TicketTracker) -> None:
        first = tracker.create_ticket(new_ticket(self.project))
        second = tracker.create_ticket(new_ticket(self.project))
        other = tracker.create_ticket(new_ticket(self.other_project))
        assert len({first.key, second.key, other.key}) == 3
        assert other.key.startswith(f"{self.other_project}-")

    def test_find_by_label_finds_only_that_ticket(self, tracker: TicketTracker) -> None:
        wanted = tracker.create_ticket(new_ticket(self.project, label="certrenew-find-me"))
        tracker.create_ticket(new_ticket(self.project, label="certrenew-find-me-not"))
        found = tracker.find_tickets("certrenew-find-me")
        assert [t.key for t in found] == [wanted.key]
        assert tracker.find_tickets("certrenew-nobody-has-this") == []

    def test_label_with_quote_characters_does_not_break_search(
        self, tracker: TicketTracker
    ) -> None:
        assert tracker.find_tickets("certrenew-\"quoted'-label") == []

    def test_ensure_ticket_opens_once(self, tracker: TicketTracker) -> None:
        new = new_ticket(self.project, label="certrenew-once")
        first = ensure_ticket(tracker, new)
        second = ensure_ticket(tracker, new)
        assert first.key == second.key
        assert len(tracker.find_tickets("certrenew-once")) == 1

    def test_links_are_recorded_once(self, tracker: TicketTracker) -> None:
        install = tracker.create_ticket(new_ticket(self.project))
        csr = tracker.create_ticket(new_ticket(self.project))
        owner = tracker.create_ticket(new_ticket(self.other_project))
        tracker.link_tickets(install.key, csr.key, "Relates")
        tracker.link_tickets(install.key, owner.key, "Relates")
        tracker.link_tickets(install.key, csr.key, "Relates")
        links = tracker.links(install.key)
        assert sorted(links, key=lambda link: link.other_key) == sorted(
            [Link("Relates", csr.key), Link("Relates", owner.key)], key=lambda link: link.other_key
        )
        assert Link("Relates", install.key) in tracker.links(csr.key)

    def test_comments_keep_order_and_text(self, tracker: TicketTracker) -> None:
        ticket = tracker.create_ticket(new_ticket(self.project))
        tracker.add_comment(ticket.key, "Primer pas: CSR rebut.")
        tracker.add_comment(ticket.key, "Segon pas: clau arxivada a «CERTIFICATS/CDS».")
        assert tracker.comments(ticket.key)[-2:] == [
            "Primer pas: CSR rebut.",
            "Segon pas: clau arxivada a «CERTIFICATS/CDS».",
        ]

    def test_attachments_round_trip_and_delete(self, tracker: TicketTracker) -> None:
        ticket = tracker.create_ticket(new_ticket(self.project))
        payload = bytes(range(256)) * 8
        added = tracker.add_attachment(ticket.key, "seu.example.cat.csr", payload)
        assert added.filename == "seu.example.cat.csr"
        listed = tracker.attachments(ticket.key)
        assert [(a.filename, a.size) for a in listed] == [("seu.example.cat.csr", len(payload))]
        assert tracker.download_attachment(ticket.key, listed[0]) == payload
        tracker.delete_attachment(ticket.key, listed[0])
        assert tracker.attachments(ticket.key) == []

    def test_close_is_idempotent(self, tracker: TicketTracker) -> None:
        ticket = tracker.create_ticket(new_ticket(self.project))
        tracker.close_ticket(ticket.key)
        tracker.close_ticket(ticket.key)
        assert tracker.get_ticket(ticket.key).status.lower() in {"done", "closed", "resolved"}

    def test_missing_ticket_is_reported_as_such(self, tracker: TicketTracker) -> None:
        with pytest.raises(TicketNotFound) as caught:
            tracker.get_ticket(f"{self.project}-999999")
        assert f"{self.project}-999999" in str(caught.value)

    def test_reference_leads_a_person_to_the_ticket(self, tracker: TicketTracker) -> None:
        ticket = tracker.create_ticket(new_ticket(self.project))
        reference = tracker.reference(ticket.key)
        assert ticket.key in reference
        if ticket.url.startswith("http"):
            assert f"[{ticket.key}]({ticket.url})" == reference  # a link to the web page
        else:
            assert f"`certrenew tickets {ticket.key}`" in reference  # the command that shows it
