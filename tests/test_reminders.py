"""Reminders and escalation decided by state, not only by date: plain functions, `now` injected."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from certrenew.adapters.notice.outbox import Outbox
from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.config import NoticeSettings
from certrenew.inventory import CertificateEntry, Endpoint, Inventory, Thresholds
from certrenew.probe import ProbeResult
from certrenew.reminders import (
    WAITING_FOR,
    RunSnapshot,
    Standing,
    days_left,
    escalation_id,
    plan_reminders,
    reminder_id,
    standing_of,
)
from certrenew.renewal import renewal_id
from certrenew.renewal_need import RenewalDecision
from certrenew.tasks import reminders
from certrenew.tasks.forms import Question, question_of

NOT_AFTER = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
DEFAULT = Thresholds()  # 30 and 7 days
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RENEWAL = "certrenew-seu-example-cat-0a1b"


def run(state: str, at: datetime = T0, key: str = "", **more: bool) -> RunSnapshot:
    """A run in `state` since `at`, paused at the pause `key` when given."""
    question = question_of(key).value if key else ""
    return RunSnapshot(
        f"run-{state}-{at:%d%H%M}", "http://ui/run", state, state.title(), at, question, key, **more
    )


def at_days_before(days: float) -> datetime:
    return NOT_AFTER - timedelta(days=days)


# Where a renewal stands, from its runs.


def test_every_question_of_the_renewal_says_for_whom_it_waits() -> None:
    assert set(WAITING_FOR) == {q.value for q in Question}


def test_no_run_is_not_started() -> None:
    assert standing_of(RENEWAL, []) == Standing("not-started", RENEWAL)


def test_a_paused_run_waits_at_its_step_for_its_role_since_it_paused() -> None:
    standing = standing_of(RENEWAL, [run("PAUSED", T0, "csr-1")])
    assert (standing.state, standing.question, standing.step) == ("waiting", "csr", "csr-1")
    assert standing.waiting_for == "systems-team" and standing.since == T0
    assert standing.waits_for_a_person and not standing.new_certificate_in_service
    owner = standing_of(RENEWAL, [run("PAUSED", T0, "ca-choice")])
    assert owner.waiting_for == "service-owner"
    assert standing_of(RENEWAL, [run("PAUSED", T0, "urgent-approval")]).waiting_for == (
        "workflow-managers"
    )


def test_waiting_for_the_retirement_means_the_new_certificate_is_in_service() -> None:
    standing = standing_of(RENEWAL, [run("PAUSED", T0, "retire")])
    assert standing.state == "verified" and standing.new_certificate_in_service
    assert not standing.waits_for_a_person


def test_a_run_that_asked_for_the_retirement_and_completed_is_done() -> None:
    standing = standing_of(RENEWAL, [run("COMPLETED", T0, retire_asked=True)])
    assert standing.state == "done" and standing.new_certificate_in_service


def test_a_waiting_run_outweighs_a_second_run_that_stopped_as_in_progress() -> None:
    runs = [run("PAUSED", T0, "ca-request"), run("COMPLETED", T0 + timedelta(days=2))]
    standing = standing_of(RENEWAL, runs)
    assert standing.state == "waiting" and standing.step == "ca-request"


def test_a_crashed_renewal_is_stopped_and_says_how() -> None:
    standing = standing_of(RENEWAL, [run("CRASHED", T0)])
    assert (standing.state, standing.note, standing.since) == ("stopped", "Crashed", T0)
    resumed = standing_of(RENEWAL, [run("CRASHED", T0), run("RUNNING", T0 + timedelta(hours=1))])
    assert resumed.state == "running"


def test_urgency_is_read_from_the_waiting_run() -> None:
    assert standing_of(RENEWAL, [run("PAUSED", T0, "csr-1", urgent=True)]).urgent


# What goes out at `now`.


@pytest.mark.parametrize(
    ("before", "reminder"),
    [
        (40, None),
        (30, None),  # a threshold of 30 days is crossed when fewer than 30 whole days remain
        (29.9, "warning"),
        (7.5, "warning"),
        (6.9, "critical"),
        (0.5, "critical"),
        (-1, "expired"),
    ],
)
def test_the_reminder_follows_the_thresholds(before: float, reminder: str | None) -> None:
    plan = plan_reminders(NOT_AFTER, DEFAULT, Standing("not-started"), at_days_before(before))
    assert plan.reminder == reminder and not plan.escalate
    assert plan.days_left == days_left(NOT_AFTER, at_days_before(before))


def test_configured_thresholds_move_the_reminders() -> None:
    early = Thresholds(warn_days=45, critical_days=10)
    assert plan_reminders(NOT_AFTER, early, Standing("running"), at_days_before(44)).reminder == (
        "warning"
    )
    assert plan_reminders(NOT_AFTER, early, Standing("running"), at_days_before(9)).reminder == (
        "critical"
    )


def test_a_renewal_waiting_for_a_person_at_the_critical_threshold_is_escalated() -> None:
    waiting = standing_of(RENEWAL, [run("PAUSED", T0, "csr-1")])
    assert not plan_reminders(NOT_AFTER, DEFAULT, waiting, at_days_before(8)).escalate
    critical = plan_reminders(NOT_AFTER, DEFAULT, waiting, at_days_before(6))
    assert critical.reminder == "critical" and critical.escalate
    assert plan_reminders(NOT_AFTER, DEFAULT, waiting, at_days_before(-2)).escalate


@pytest.mark.parametrize("state", ["not-started", "running", "stopped", "unknown"])
def test_only_a_wait_for_a_person_escalates(state: str) -> None:
    plan = plan_reminders(NOT_AFTER, DEFAULT, Standing(state), at_days_before(3))  # type: ignore[arg-type]
    assert plan.reminder == "critical" and not plan.escalate


@pytest.mark.parametrize("state", ["verified", "done"])
def test_nothing_is_sent_once_the_new_certificate_is_in_service(state: str) -> None:
    for before in (20, 3, -5):  # even past the old certificate's expiry, after its retirement
        plan = plan_reminders(NOT_AFTER, DEFAULT, Standing(state), at_days_before(before))  # type: ignore[arg-type]
        assert plan.reminder is None and not plan.escalate


def test_a_renewal_followed_day_by_day_sends_two_reminders_and_one_escalation() -> None:
    """The detection runs daily; the outbox keeps one notice per id (a set, here)."""
    sent: list[str] = []
    csr_wait = run("PAUSED", at_days_before(20), "csr-1")
    for day in range(40, -1, -1):
        now = at_days_before(day) + timedelta(hours=1)
        if day > 20:
            runs: list[RunSnapshot] = []
        elif day > 2:
            runs = [csr_wait]
        else:  # installed and verified two days before expiry: retirement asked
            runs = [run("PAUSED", at_days_before(2), "retire")]
        standing = standing_of(RENEWAL, runs)
        plan = plan_reminders(NOT_AFTER, DEFAULT, standing, now)
        if plan.reminder:
            sent.append(reminder_id("seu", "0A1B", plan.reminder))
        if plan.escalate:
            sent.append(escalation_id(RENEWAL))
    assert list(dict.fromkeys(sent)) == [
        "expiry-seu-0A1B-warning",
        "expiry-seu-0A1B-critical",
        f"escalation-{RENEWAL}",
    ]


# The detection's reminders and escalation, acted on a real outbox and local tracker; only
# the reading of runs from Prefect (our own function) is replaced by a given standing.


def probe(days: int, now: datetime) -> ProbeResult:
    not_after = (now + timedelta(days=days, hours=1)).isoformat()
    return ProbeResult(
        "seu", "seu.example.cat", "127.0.0.1:443", "endpoint", not_after, days, "critical",
        "seu.example.cat", ["seu.example.cat"], "CA", "0A1B", "ab" * 32, True, None,
    )  # fmt: skip


@pytest.fixture
def inventory() -> Inventory:
    entry = CertificateEntry(
        name="seu",
        domain="seu.example.cat",
        owner="owner-login",
        owner_email="owner@example.cat",
        endpoints=[Endpoint(host="127.0.0.1", port=443)],
    )
    return Inventory(certificates=[entry])


NOTICES = NoticeSettings(recipients=["team@example.cat"], managers=["boss@example.cat"])


def read(outbox: Path, notice_id: str) -> EmailMessage:
    message = email.message_from_bytes(
        (outbox / f"{notice_id}.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    return message


def test_a_reminder_says_where_the_renewal_waits_and_an_escalation_acts_once(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    rid = renewal_id("seu.example.cat", "0A1B")
    waiting = Standing(
        "waiting", rid, "csr", "csr-1", "systems-team", T0, "run-1", "http://ui/runs/flow-run/1"
    )
    monkeypatch.setattr(reminders, "renewal_standings", lambda due, ui: {rid: waiting})
    urgent: list[str] = []
    monkeypatch.setattr(reminders, "make_urgent", lambda standing: urgent.append(standing.run_id))
    tracker = LocalTracker(tmp_path / "tickets.sqlite3")
    for kind in ("csr", "owner"):
        tracker.create_ticket(NewTicket("SIS", f"{kind} seu", "", f"{rid}-{kind}", (rid,)))
    outbox = Outbox(tmp_path / "outbox")
    decisions = [RenewalDecision("seu", "seu.example.cat", "critical", probe(5, now), (), ())]

    for _ in range(2):  # two daily runs: nothing is repeated
        assert reminders.send_reminders(decisions, inventory, NOTICES, [outbox], tracker, now) == []

    reminder = read(outbox.folder, "expiry-seu-0A1B-critical")
    text = reminder.get_content()
    assert reminder["To"] == "team@example.cat, owner@example.cat"
    assert "queden 5 dies" in text
    assert "esperant al pas «csr-1» l'equip de Sistemes des del 2026-12-01 09:00 UTC" in text
    assert "http://ui/runs/flow-run/1" in text and "SIS-1, SIS-2" in text

    escalation = read(outbox.folder, f"escalation-{rid}")
    assert escalation["To"] == "team@example.cat, owner@example.cat, boss@example.cat"
    assert "passa a ser urgent" in escalation.get_content()
    assert urgent == ["run-1", "run-1"]  # asked each run; setting a parameter is idempotent
    for key in ("SIS-1", "SIS-2"):
        said = [c for c in tracker.comments(key) if "[certrenew:escalated]" in c]
        assert len(said) == 1 and "queden 5 dies" in said[0] and "«csr-1»" in said[0]
    assert sorted(p.name for p in outbox.folder.glob("*.eml")) == [
        f"escalation-{rid}.eml",
        "expiry-seu-0A1B-critical.eml",
    ]


def test_no_reminder_once_the_new_certificate_is_verified_in_service(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    rid = renewal_id("seu.example.cat", "0A1B")
    verified = Standing("verified", rid, "retire", "retire", "support-staff", T0, "run-1")
    monkeypatch.setattr(reminders, "renewal_standings", lambda due, ui: {rid: verified})
    outbox = Outbox(tmp_path / "outbox")
    decisions = [RenewalDecision("seu", "seu.example.cat", "critical", probe(3, now), (), ())]
    tracker = LocalTracker(tmp_path / "tickets.sqlite3")
    reminders.send_reminders(decisions, inventory, NOTICES, [outbox], tracker, now)
    assert not outbox.folder.exists() or not list(outbox.folder.glob("*.eml"))


def test_a_reminder_before_any_renewal_says_it_has_not_started(
    tmp_path: Path, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    rid = renewal_id("seu.example.cat", "0A1B")
    monkeypatch.setattr(
        reminders, "renewal_standings", lambda due, ui: {rid: Standing("not-started", rid)}
    )
    outbox = Outbox(tmp_path / "outbox")
    decisions = [RenewalDecision("seu", "seu.example.cat", "warning", probe(20, now), (), ())]
    tracker = LocalTracker(tmp_path / "tickets.sqlite3")
    reminders.send_reminders(decisions, inventory, NOTICES, [outbox], tracker, now)
    [notice] = outbox.folder.glob("*.eml")
    assert notice.name == "expiry-seu-0A1B-warning.eml"
    assert "Renovació: no s'ha començat." in read(outbox.folder, notice.stem).get_content()
