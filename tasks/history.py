"""Reads a certificate's renewals from where they happened: the Prefect API and the tracker.

Thin on purpose: it fetches flow runs, their states and form answers, and each
renewal's tickets, and hands them as events to certrenew.history, which orders
them. A run finds its renewal by the label the flow puts on it
(`context.RENEWAL_LABEL`), and a renewal its tickets by the renewal's label.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from certrenew.adapters.tracker import AuditableTracker, TicketHistory, TicketTracker
from certrenew.errors import ConfigError, TrackerError
from certrenew.history import (
    CertificateHistory,
    Event,
    EventKind,
    RunRecord,
    RunState,
    answer_event,
    comment_event,
    renewal_history,
    state_events,
)
from certrenew.inventory import CertificateEntry
from certrenew.tasks.context import RENEWAL_FLOW, RENEWAL_LABEL, run_page
from certrenew.tasks.forms import Question, question_of, wait_reason, who_answered
from certrenew.tasks.prefect_api import require_prefect_api, unreachable
from certrenew.tasks.waiting import question_keyset

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun, FlowRunInput, State

PAGE = 200
T = TypeVar("T")


def certificate_history(
    entry: CertificateEntry, tracker: TicketTracker, ui_url: str | None
) -> CertificateHistory:
    """Every renewal of `entry`: the renewal flow's runs for it, and their tickets."""
    if not isinstance(tracker, AuditableTracker):
        raise TrackerError(
            "the configured tracker keeps no ticket history: read the tickets in the tracker"
        )
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError(
            "PREFECT_API_URL is not set: point it at the Prefect server the renewals run on "
            "(e.g. http://127.0.0.1:4200/api)"
        )
    require_prefect_api()
    with get_client(sync_client=True) as client:
        runs = renewal_runs(client, {entry.name, entry.domain})
        grouped: dict[str, list[FlowRun]] = {}
        for run in runs:
            grouped.setdefault(str(run.labels.get(RENEWAL_LABEL, "")), []).append(run)
        renewals = []
        for renewal, its_runs in grouped.items():
            tickets = tracker.find_tickets(renewal) if renewal else []
            events: list[Event] = []
            records = []
            for run in its_runs:
                url = run_page(str(run.id), ui_url)
                states, answers = _run_history(client, run, url)
                records.append(RunRecord(run.name, url, renewal, _state_name(run), tuple(states)))
                events += state_events(run.name, url, states) + answers
            for ticket in tickets:
                events += ticket_events(tracker.ticket_history(ticket.key))
            renewals.append(renewal_history(renewal, [t.key for t in tickets], records, events))
    return CertificateHistory(entry.name, entry.domain, tuple(renewals))


def ticket_events(history: TicketHistory) -> list[Event]:
    """A ticket's history as timeline events; each link once, from the ticket it goes out of."""
    key = history.ticket.key
    events = [Event(history.created, "ticket-opened", key, f"opened: {history.ticket.summary}")]
    events += [comment_event(key, c.body, c.created, c.author) for c in history.comments]
    for dated in history.links:
        if dated.link.outward:
            when = "" if dated.created else " (when not recorded: shown at the ticket's opening)"
            events.append(
                Event(
                    dated.created or history.created,
                    "link",
                    key,
                    f"linked to {dated.link.other_key} ({dated.link.link_type}){when}",
                )
            )
    for change in history.attachments:
        kind: EventKind = "attachment-removed" if change.removed else "attachment-added"
        verb = "removed" if change.removed else "attached"
        events.append(Event(change.at, kind, key, f"{verb} {change.filename}", change.author))
    return events


def renewal_runs(client: SyncPrefectClient, names: set[str]) -> list[FlowRun]:
    """The renewal flow's runs whose certificate (`name` parameter) is one of `names`."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    def page(offset: int) -> list[FlowRun]:
        return prefect_api(
            lambda: client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[RENEWAL_FLOW])),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=PAGE,
                offset=offset,
            )
        )

    found: list[FlowRun] = []
    offset = 0
    while True:
        runs = page(offset)
        found += [run for run in runs if run.parameters.get("name") in names]
        if len(runs) < PAGE:
            return found
        offset += PAGE


def _run_history(
    client: SyncPrefectClient, run: FlowRun, url: str
) -> tuple[list[RunState], list[Event]]:
    """Every state of the run, oldest first, and for each question answered, the answer."""
    states = sorted(
        prefect_api(lambda: client.read_flow_run_states(run.id)), key=lambda s: s.timestamp
    )
    records: list[RunState] = []
    answers: list[Event] = []
    asked: set[str] = set()
    for state in states:
        key = (state.state_details.pause_key or "") if state.is_paused() else ""
        reason = ""
        if key and key not in asked:
            asked.add(key)
            keyset = question_keyset(state)
            if _is_wait(key):
                description = _input(client, run.id, keyset["description"])
                reason = wait_reason(str(description.decoded_value)) if description else ""
            answer = _answer(client, run.id, keyset["response"])
            if answer is not None:
                at, given = answer
                answers.append(answer_event(run.name, url, key, at, given, who_answered(given)))
        message = reason if key else (state.message or "")
        records.append(
            RunState(_utc(state.timestamp), state.type.value, state.name or "", key, message)
        )
    return records, answers


def _is_wait(key: str) -> bool:
    try:
        return question_of(key) == Question.WAIT
    except ValueError:
        return False


def _answer(
    client: SyncPrefectClient, run_id: UUID, key: str
) -> tuple[datetime, dict[str, Any]] | None:
    """When the question was answered and with what; None while it waits."""
    found = _input(client, run_id, key)
    if found is None or not isinstance(found.decoded_value, dict):
        return None
    return _utc(found.created or datetime.now(UTC)), found.decoded_value


def _input(client: SyncPrefectClient, run_id: UUID, key: str) -> FlowRunInput | None:
    """The run input saved under `key` (a form's description or its answer), if any."""
    found = prefect_api(lambda: client.filter_flow_run_input(run_id, key, 1, set()))
    return found[0] if found and found[0].key == key else None


def _state_name(run: FlowRun) -> str:
    state: State | None = run.state
    return state.name if state is not None and state.name else "unknown"


def _utc(moment: datetime) -> datetime:
    return datetime.fromisoformat(moment.isoformat()).astimezone(UTC)


def prefect_api(call: Callable[[], T]) -> T:
    """Prefect's answer; an unreachable API is a one-line error saying where it looked."""
    import httpx

    try:
        return call()
    except (httpx.TransportError, httpx.HTTPStatusError) as exc:
        raise unreachable(exc) from None
