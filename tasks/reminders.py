"""Reminders and escalation as each detection run sends them.

Reads where each due certificate's renewal stands from the Prefect API (the
renewal flow's runs, labelled with their renewal; a wait is a Paused state
with its pause key), lets certrenew.reminders decide, and acts: a reminder
that says where the renewal stands, and for a renewal still waiting for a
person when its certificate turns critical, the escalation. Every action is
idempotent (the outbox keeps one notice per id, a ticket one comment per step
marker, the run's `urgent` parameter is set, not toggled), so an escalation
that half failed completes on the next run and is never repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from certrenew.adapters.notice import NoticeChannel
from certrenew.adapters.tracker import TicketTracker
from certrenew.config import NoticeSettings
from certrenew.errors import CertRenewError
from certrenew.inventory import Inventory
from certrenew.reminders import (
    RunSnapshot,
    Standing,
    escalation_id,
    plan_reminders,
    reminder_id,
    standing_of,
)
from certrenew.renewal import renewal_id
from certrenew.renewal_need import RenewalDecision
from certrenew.tasks.context import RENEWAL_LABEL, run_page
from certrenew.tasks.forms import question_of
from certrenew.tasks.history import prefect_api, renewal_runs
from certrenew.tasks.notices import report, send_notice
from certrenew.tasks.tickets import post_once
from certrenew.templates import comments

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger(__name__)

ESCALATED_STEP = "escalated"


def send_reminders(
    decisions: Iterable[RenewalDecision],
    inventory: Inventory,
    notices: NoticeSettings,
    channels: Sequence[NoticeChannel],
    tracker: TicketTracker,
    now: datetime,
    ui_url: str | None = None,
) -> list[str]:
    """The reminder (and escalation) due for each certificate; what did not go out."""
    due = [d for d in decisions if d.needs_renewal and d.newest and d.newest.serial]
    standings = renewal_standings(due, ui_url)
    undelivered: list[str] = []
    for decision in due:
        newest = decision.newest
        assert newest is not None and newest.serial and newest.not_after_datetime
        entry = inventory.get(decision.name)
        standing = standings[renewal_id(decision.domain, newest.serial)]
        plan = plan_reminders(
            newest.not_after_datetime, entry.thresholds(inventory.defaults), standing, now
        )
        if plan.reminder is None and not plan.escalate:
            continue
        tickets = _tickets(tracker, standing.renewal)
        facts = {
            "name": decision.name,
            "kind": "SSL",
            "domain": decision.domain,
            "serial": newest.serial,
            "not_after": newest.not_after,
            "days_left": plan.days_left,
            "standing": standing,
            "tickets": tickets,
        }
        if plan.reminder is not None:
            undelivered += send_notice(
                channels,
                reminder_id(decision.name, newest.serial, plan.reminder),
                "expiry_reminder",
                notices.recipients_for("expiry", entry.owner_email),
                **facts,
            )
        if plan.escalate:
            try:
                make_urgent(standing)
            except CertRenewError as exc:
                report(f"could not mark {standing.renewal} urgent (next run tries again): {exc}")
            for ticket in tickets:
                _comment(tracker, ticket, standing, plan.days_left, newest.not_after)
            undelivered += send_notice(
                channels,
                escalation_id(standing.renewal),
                "escalation_notice",
                notices.recipients_for("escalation", entry.owner_email),
                **facts,
            )
    return undelivered


def renewal_standings(due: Sequence[RenewalDecision], ui_url: str | None) -> dict[str, Standing]:
    """Where the renewal of each due certificate stands, by renewal id.

    A Prefect API that cannot be read leaves every standing unknown: the
    reminders still go out (saying so), and nothing is escalated blindly.
    """
    from prefect import get_client

    wanted = {renewal_id(d.domain, d.newest.serial) for d in due if d.newest and d.newest.serial}
    if not wanted:
        return {}
    names = {d.name for d in due} | {d.domain for d in due}
    snapshots: dict[str, list[RunSnapshot]] = {}
    try:
        with get_client(sync_client=True) as client:
            for run in renewal_runs(client, names):
                renewal = str(run.labels.get(RENEWAL_LABEL, ""))
                if renewal in wanted:
                    snapshots.setdefault(renewal, []).append(snapshot(client, run, ui_url))
    except CertRenewError as exc:
        report(f"where the renewals stand is unknown: {exc}")
        return {renewal: Standing("unknown", renewal) for renewal in wanted}
    return {renewal: standing_of(renewal, snapshots.get(renewal, [])) for renewal in wanted}


def snapshot(client: SyncPrefectClient, run: FlowRun, ui_url: str | None) -> RunSnapshot:
    """The run as it stands; a finished run also says whether it asked for the retirement."""
    state = run.state
    assert state is not None, "the API returns runs with their state"
    key = (state.state_details.pause_key or "") if state.is_paused() else ""
    retire_asked = False
    if state.is_completed():
        states = prefect_api(lambda: client.read_flow_run_states(run.id))
        retire_asked = any(
            _question(s.state_details.pause_key or "") == "retire" for s in states if s.is_paused()
        )
    return RunSnapshot(
        id=str(run.id),
        url=run_page(str(run.id), ui_url),
        state=state.type.value,
        state_name=state.name or state.type.value,
        since=datetime.fromisoformat(state.timestamp.isoformat()).astimezone(UTC),
        question=_question(key),
        step=key,
        retire_asked=retire_asked,
        urgent=bool(run.parameters.get("urgent")),
    )


def make_urgent(standing: Standing) -> None:
    """The waiting run goes on as an urgent renewal: its CA request reads `urgent=True`.

    The run's parameter is set on the server, where a suspended run starts again
    from and a warm one reads it back (`urgent_now`), so the CA request, when it
    comes, first asks a workflow manager to approve the urgent channel.
    """
    if standing.urgent or not standing.run_id:
        return
    from uuid import UUID

    from prefect import get_client

    with get_client(sync_client=True) as client:
        run_id = UUID(standing.run_id)
        parameters = prefect_api(lambda: client.read_flow_run(run_id)).parameters
        prefect_api(
            lambda: client.update_flow_run(run_id, parameters={**parameters, "urgent": True})
        )


def urgent_now(urgent: bool) -> bool:
    """Whether this run goes the urgent way: started so, or escalated since (`make_urgent`).

    The escalation sets the `urgent` parameter on the server while the run waits
    for a person. A suspended run starts again from it; a run answered within its
    warm window (certrenew.tasks.waiting) goes on in the process that started with
    the old value, so the decision reads the parameter again.
    """
    if urgent:
        return True
    from uuid import UUID

    from prefect import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if run_id is None:
        return False
    with get_client(sync_client=True) as client:
        run = prefect_api(lambda: client.read_flow_run(UUID(run_id)))
    return bool(run.parameters.get("urgent"))


def _comment(
    tracker: TicketTracker, ticket: str, standing: Standing, days_left: int, not_after: str | None
) -> None:
    try:
        body = comments.escalated(days_left, not_after, standing)
        post_once(tracker, ticket, ESCALATED_STEP, body, "", standing.run_url)
    except CertRenewError as exc:
        report(f"could not comment the escalation on {ticket} (next run tries again): {exc}")


def _tickets(tracker: TicketTracker, renewal: str) -> list[str]:
    if not renewal:
        return []
    try:
        return [ticket.key for ticket in tracker.find_tickets(renewal)]
    except CertRenewError as exc:
        report(f"could not read the tickets of {renewal}: {exc}")
        return []


def _question(key: str) -> str:
    try:
        return question_of(key).value if key else ""
    except ValueError:
        return ""
