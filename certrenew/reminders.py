"""The runbook's reminders and escalation, decided from a certificate's expiry and where its
renewal stands, never from the date alone.

A reminder goes out when a certificate crosses its warning threshold (30 days
by default) and again at its critical threshold (7 days) and at expiry; each
says where the renewal stands: not started, running, waiting at a step for
someone since a date, or stopped. Once the new certificate is verified in
service (the renewal asks for the old one's retirement) or the old one is
retired, nothing more is sent about the old certificate. A renewal still
waiting for a person when its certificate turns critical is escalated: made
urgent, said on its tickets, told to the team and the workflow managers.

Everything here is a plain function of its inputs, `now` included: the
reading of runs from Prefect lives in certrenew.tasks.reminders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from certrenew.inventory import Thresholds
from certrenew.probe import Status, expiry_status

StandingState = Literal[
    "not-started", "running", "waiting", "verified", "done", "stopped", "unknown"
]

# Who a renewal waits for at each question (the renewal's pause keys, `Question` in
# certrenew.tasks.forms): the runbook's roles.
WAITING_FOR: dict[str, str] = {
    "csr-reuse": "support-staff",
    "csr": "systems-team",
    "ca-choice": "service-owner",
    "urgent-approval": "workflow-managers",
    "ca-request": "support-staff",
    "certificate": "ca",
    "p12": "ca",  # the CA hands out the .p12; support staff download it
    "install": "systems-team",
    "retire": "support-staff",
    "wait": "support-staff",
}

# Prefect state types a run is still going in, without waiting for a person.
ACTIVE = frozenset({"SCHEDULED", "PENDING", "RUNNING", "CANCELLING"})


@dataclass(frozen=True)
class RunSnapshot:
    """One run of a renewal as Prefect has it now."""

    id: str
    url: str
    state: str  # StateType's value: PAUSED, RUNNING, COMPLETED, CRASHED...
    state_name: str
    since: datetime  # when it entered that state
    question: str = ""  # the question a paused run waits on (a WAITING_FOR key)
    step: str = ""  # its pause key (`csr-2`, `wait-archive-artifacts-1`)
    retire_asked: bool = False  # the run asked for the old certificate's retirement
    urgent: bool = False


@dataclass(frozen=True)
class Standing:
    """Where a certificate's renewal stands, as a reminder says it."""

    state: StandingState
    renewal: str = ""
    question: str = ""  # the question it waits on (a WAITING_FOR key)
    step: str = ""  # its pause key, as the run's page shows it
    waiting_for: str = ""
    since: datetime | None = None
    run_id: str = ""
    run_url: str = ""
    urgent: bool = False
    note: str = ""  # how a stopped run ended (Crashed, Failed...)

    @property
    def waits_for_a_person(self) -> bool:
        return self.state == "waiting"

    @property
    def new_certificate_in_service(self) -> bool:
        """Verified in service (retirement asked) or retired: the old one is no one's concern."""
        return self.state in ("verified", "done")


NOT_STARTED = Standing("not-started")


def standing_of(renewal: str, runs: Sequence[RunSnapshot]) -> Standing:
    """Where the renewal stands, from its runs (any order).

    A run waiting for a person says the most; then one still going; then a
    run that retired the old certificate; then how the last one ended.
    """
    if not runs:
        return Standing("not-started", renewal)
    newest_first = sorted(runs, key=lambda run: run.since, reverse=True)
    for run in newest_first:
        if run.state == "PAUSED":
            state: StandingState = "verified" if run.question == "retire" else "waiting"
            return Standing(
                state,
                renewal,
                run.question,
                run.step,
                WAITING_FOR.get(run.question, "support-staff"),
                run.since,
                run.id,
                run.url,
                run.urgent,
            )
    for run in newest_first:
        if run.state in ACTIVE:
            return Standing("running", renewal, since=run.since, run_id=run.id, run_url=run.url)
    for run in newest_first:
        if run.state == "COMPLETED" and run.retire_asked:
            return Standing("done", renewal, since=run.since, run_id=run.id, run_url=run.url)
    last = newest_first[0]
    return Standing(
        "stopped", renewal, since=last.since, run_id=last.id, run_url=last.url, note=last.state_name
    )


@dataclass(frozen=True)
class ReminderPlan:
    """What to send about one certificate today."""

    reminder: Status | None  # the threshold crossed (warning, critical, expired), or None
    escalate: bool
    days_left: int


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until expiry, rounded down; negative once expired (as the scan counts)."""
    return (not_after - now).days


def plan_reminders(
    not_after: datetime, thresholds: Thresholds, standing: Standing, now: datetime
) -> ReminderPlan:
    """The reminder due at `now`, if any, and whether the renewal must be escalated."""
    left = days_left(not_after, now)
    status = expiry_status(left, thresholds)
    if status == "ok" or standing.new_certificate_in_service:
        return ReminderPlan(None, False, left)
    critical = status in ("critical", "expired")
    return ReminderPlan(status, critical and standing.waits_for_a_person, left)


def reminder_id(name: str, serial: str, stage: Status) -> str:
    """One reminder per certificate, serial and threshold crossed."""
    return f"expiry-{name}-{serial}-{stage}"


def escalation_id(renewal: str) -> str:
    """One escalation per renewal."""
    return f"escalation-{renewal}"
