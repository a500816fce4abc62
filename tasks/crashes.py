"""A renewal run that keeps crashing waits for a person instead of being retried for ever.

The recovery automations (certrenew.deployments.recovery) schedule every
crashed renewal run again, and a new run hands over to a crashed one
(certrenew.tasks.handover): both retry the same run. An automation cannot
count, so the run counts for itself, from its own state history on the
Prefect server, each time it starts: beyond `[recovery] max_retries` crashes
within `retry_window_hours` it does not go on to the step that crashed it
(an out-of-memory step, a poison answer, a machine that keeps failing), but
waits for a person with the reason in its form, on its service-owner ticket
and in `certrenew status`. Submitting the form lets it try again; another
crash after that asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_client
from prefect.runtime import flow_run

from certrenew.adapters.wiring import RenewalContext
from certrenew.renewal import RenewalStart
from certrenew.tasks import forms
from certrenew.tasks.context import say
from certrenew.tasks.tickets import comment_once
from certrenew.templates import comments

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

CRASH_LOOP = "crash-loop"


@dataclass(frozen=True)
class CrashCount:
    """How often the run crashed: in all, and within the window the bound applies to."""

    total: int
    recent: int
    last_message: str


def count_crashes(states: list[State], since: datetime) -> CrashCount:
    crashed = sorted((s for s in states if s.is_crashed()), key=lambda s: s.timestamp)
    recent = [s for s in crashed if _utc(s.timestamp) >= since]
    return CrashCount(len(crashed), len(recent), crashed[-1].message or "" if crashed else "")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def crash_loop_reason(count: CrashCount, max_retries: int, window_hours: float) -> str | None:
    """Why the run stops here, or None while its crashes are within the bound."""
    if count.recent <= max_retries:
        return None
    last = f" The last one: {count.last_message}." if count.last_message else ""
    return (
        f"This renewal run crashed {count.recent} times in the last {window_hours:g} hours "
        f"(at most {max_retries} are retried by themselves), so it is not started again on "
        f"its own.{last} Its process died each time (out of memory, killed, a machine "
        "restarting): look at the run's logs and the machine, fix the cause, then submit."
    )


def wait_out_crash_loop(ctx: RenewalContext, start: RenewalStart) -> None:
    """Stop here for a person when this run crashed more often than the bound allows."""
    run_id = flow_run.get_id()
    if not run_id:
        return
    recovery = ctx.recovery
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(run_id))
    since = datetime.now(UTC) - timedelta(hours=recovery.retry_window_hours)
    count = count_crashes(states, since)
    reason = crash_loop_reason(count, recovery.max_retries, recovery.retry_window_hours)
    if reason is None:
        return
    key = forms.pause_key(forms.Question.WAIT, CRASH_LOOP, count.total)
    if forms.stored_answer(forms.WaitAnswer, key) is None:
        _tell_the_owner_ticket(ctx, start, count, recovery.retry_window_hours)
        say(f"waiting for a person: crashed {count.recent} times")
    forms.ask(
        forms.WaitAnswer,
        key,
        forms.form_text(
            f"The renewal of {start.domain} keeps crashing",
            so_far=["Nothing done so far is lost: finished steps keep their results."],
            problem=reason,
            now="Fix the cause, then submit: the run goes on from its stored steps.",
            after="The run goes on where it crashed; if it crashes again, this form comes back.",
        ),
    )


def _tell_the_owner_ticket(
    ctx: RenewalContext, start: RenewalStart, count: CrashCount, hours: float
) -> None:
    """The renewal's service-owner ticket says why it stopped (when the ticket is open yet)."""
    from certrenew.errors import PERSON_FIXABLE

    try:
        found = ctx.tracker.find_tickets(start.label("owner"))
        if found:
            body = comments.crash_loop(count.recent, f"{hours:g}", count.last_message)
            comment_once(ctx, found[0].key, f"{CRASH_LOOP}-{count.total}", body)
    except PERSON_FIXABLE as exc:  # the form still says it; the ticket is a courtesy
        say(f"could not comment the crash loop on the ticket: {exc}")
