"""Reminders and escalation against a real Prefect API and a served renewal waiting for a person.

The renewal waits in its warm window (certrenew.tasks.waiting, on by default)
when it is escalated: its process keeps the parameters it started with, and
must still go the urgent way.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from certrenew.adapters.wiring import build_notice_channels
from certrenew.inventory import load_inventory
from certrenew.probe import run_scan
from certrenew.renewal import renewal_id
from certrenew.renewal_need import renewal_decisions
from certrenew.tasks.forms import Question, pause_key
from certrenew.tasks.reminders import send_reminders
from tests.fixtures_renewal import RenewalLab

pytestmark = pytest.mark.prefect


def test_a_renewal_waiting_at_the_critical_threshold_is_escalated_and_goes_the_urgent_way(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    domain, server = lab.serve_certificate("escalate", days=5)  # critical: fewer than 7 days
    inventory = load_inventory(lab.inventory)
    single = inventory.model_copy(update={"certificates": [inventory.get("escalate")]})
    decisions = renewal_decisions(run_scan(single, concurrency=1, timeout=5), single)
    [decision] = decisions
    assert decision.newest is not None and decision.newest.serial
    rid = renewal_id(domain, decision.newest.serial)
    people = lab.people(domain, server)
    tracker = lab.tracker()
    run = lab.start("escalate")
    run.wait_paused(pause_key(Question.CSR, 1))  # the systems team has attached nothing yet
    assert run.state().name == "Paused", "escalated while its process waits for the answer"

    def remind(now: datetime | None = None) -> list[str]:
        """The detection's reminders; `decisions` keep showing the old certificate."""
        channels = build_notice_channels(lab.settings)
        when = now or datetime.now(UTC)
        return send_reminders(decisions, single, lab.settings.notices, channels, tracker, when)

    assert remind() == []
    outbox = lab.settings.outbox_path()
    reminder = email.message_from_bytes(
        (outbox / f"expiry-escalate-{decision.newest.serial}-critical.eml").read_bytes(),
        policy=email.policy.default,
    )
    text = reminder.get_content()
    assert "esperant al pas «csr-1» l'equip de Sistemes des del" in text
    assert str(run.id) in text  # the run's page
    escalation = outbox / f"escalation-{rid}.eml"
    assert escalation.exists()
    tickets = tracker.find_tickets(rid)
    assert len(tickets) == 2  # the CSR ticket and the service owner's
    for ticket in tickets:
        said = [c for c in tracker.comments(ticket.key) if "[certrenew:escalated]" in c]
        assert len(said) == 1, ticket.key

    from prefect import get_client

    with get_client(sync_client=True) as client:
        assert client.read_flow_run(UUID(str(run.id))).parameters["urgent"] is True

    first = escalation.read_bytes()
    assert remind() == []  # the next daily run: nothing escalated twice
    assert escalation.read_bytes() == first
    for ticket in tickets:
        said = [c for c in tracker.comments(ticket.key) if "[certrenew:escalated]" in c]
        assert len(said) == 1, ticket.key

    # The renewal goes on as an urgent one: the CA request first asks a manager's approval.
    run.answer_each(people, rid, pause_key(Question.CSR, 1), Question.CA_CHOICE)
    assert "manager" in run.wait_paused(Question.URGENT_APPROVAL)
    run.resume(approved_by="Marta (manager)", approved=True)
    assert "Urgent channel" in run.wait_paused(Question.CA_REQUEST)
    run.resume(**people.answer(Question.CA_REQUEST, rid))
    run.answer_each(people, rid, pause_key(Question.CERTIFICATE, 1), pause_key(Question.INSTALL, 1))

    # Verified in service, the old certificate is no one's concern: even once it has
    # expired (a later `now`), and even seen somewhere still, no reminder goes out.
    run.wait_paused(Question.RETIRE)
    sent = sorted(p.name for p in outbox.glob("*.eml"))
    expired = datetime.now(UTC) + timedelta(days=6)
    assert remind(expired) == []
    assert sorted(p.name for p in outbox.glob("*.eml")) == sent
    run.resume(outcome="Retired without revocation", confirmed_by="Anna (support)")
    assert run.wait_final().is_completed()
    assert remind(expired) == []
    assert sorted(p.name for p in outbox.glob("*.eml")) == sent
