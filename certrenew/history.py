"""A certificate's renewals as auditors read them: one timeline per renewal, oldest first.

Two sources tell the story and neither is complete alone: the tickets (what was
said, attached, removed and linked, and by whom) and the flow runs (when the run
waited, for which question, and what people answered in the forms). The reading
of both lives elsewhere (certrenew.tasks.history); here are the events, how each
source's records become events, and the merge, as plain functions.

Form answers are kept as given, except pasted PEM blocks (a CSR or certificate),
which are public but long: the timeline says they were pasted. Forms never ask
for a private key, so none can show up here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from certrenew.rules import parse_step_footer

EventKind = Literal[
    "ticket-opened",
    "comment",
    "link",
    "attachment-added",
    "attachment-removed",
    "run-state",
    "waiting",
    "answer",
]

# Prefect states that say nothing an auditor needs: each resume goes through them.
QUIET_STATES = frozenset({"SCHEDULED", "PENDING", "RUNNING"})


@dataclass(frozen=True)
class Event:
    """One thing that happened in a renewal, in the words of the source that recorded it."""

    at: datetime
    kind: EventKind
    where: str  # a ticket key, or the flow run's name
    what: str
    actor: str = ""  # who did it, when a person did and the source says who
    step: str = ""  # the runbook step (a comment's marker) or the question (a pause key)
    link: str = ""  # the flow run's page
    details: tuple[tuple[str, str], ...] = ()  # a form's answers, field by field

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "where": self.where,
            "what": self.what,
            "actor": self.actor,
            "step": self.step,
            "link": self.link,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class RunState:
    """A flow run state as Prefect recorded it."""

    at: datetime
    type: str  # StateType's value: RUNNING, PAUSED, COMPLETED...
    name: str
    pause_key: str = ""
    message: str = ""  # why it waits (a step's outside system failing), or how it ended

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "at": self.at.isoformat()}


@dataclass(frozen=True)
class RunRecord:
    """One flow run of the renewal flow: the timeline's header, and every state it went through."""

    name: str
    url: str
    renewal: str  # "" when the run stopped or waits before step 0 (nothing to renew, no endpoint)
    state: str
    states: tuple[RunState, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "states": [state.as_dict() for state in self.states]}


@dataclass(frozen=True)
class RenewalHistory:
    """One renewal: its tickets, its runs and everything that happened, oldest first."""

    renewal: str
    tickets: tuple[str, ...]
    runs: tuple[RunRecord, ...]
    events: tuple[Event, ...]

    @property
    def answers(self) -> tuple[Event, ...]:
        """What people decided in the forms: who chose the CA, filed the request, retired."""
        return tuple(event for event in self.events if event.kind == "answer")

    def as_dict(self) -> dict[str, Any]:
        return {
            "renewal": self.renewal,
            "tickets": list(self.tickets),
            "runs": [run.as_dict() for run in self.runs],
            "answers": [event.as_dict() for event in self.answers],
            "events": [event.as_dict() for event in self.events],
        }


@dataclass(frozen=True)
class CertificateHistory:
    name: str
    domain: str
    renewals: tuple[RenewalHistory, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domain": self.domain,
            "renewals": [renewal.as_dict() for renewal in self.renewals],
        }


def timeline(events: Iterable[Event]) -> tuple[Event, ...]:
    """Oldest first; events recorded at the same moment keep the order they came in."""
    return tuple(sorted(events, key=lambda event: event.at))


def renewal_history(
    renewal: str, tickets: Iterable[str], runs: Iterable[RunRecord], events: Iterable[Event]
) -> RenewalHistory:
    return RenewalHistory(renewal, tuple(tickets), tuple(runs), timeline(events))


def comment_event(ticket: str, body: str, at: datetime, author: str) -> Event:
    """A comment; certrenew's own carry their step, who answered it and the run's page."""
    text, footer = parse_step_footer(body)
    if footer is None:
        return Event(at, "comment", ticket, text, actor=author)
    return Event(
        at,
        "comment",
        ticket,
        text,
        actor=footer.actor or author,
        step=footer.step,
        link=footer.run_url,
    )


def state_events(run: str, url: str, states: Iterable[RunState]) -> list[Event]:
    """The states that matter: when the run started, each wait for a person, how it ended.

    A Paused state is the run asking a question (its pause key); Scheduled,
    Pending and Running again after each answer are the machinery of resuming.
    A question whose warm window ended unanswered is Paused, then Suspended
    under the same key: one wait, shown once.
    """
    events: list[Event] = []
    started = False
    for state in states:
        if state.type == "RUNNING" and not started:
            started = True
            events.append(Event(state.at, "run-state", run, "run started", link=url))
        elif state.type == "PAUSED":
            question = state.pause_key or state.name
            if events and events[-1].kind == "waiting" and events[-1].step == question:
                continue  # the same question, still unanswered, now without a process
            why = f" ({state.message})" if state.message else ""
            what = f"waiting for: {question}{why}"
            events.append(Event(state.at, "waiting", run, what, step=question, link=url))
        elif state.type not in QUIET_STATES:  # how it ended, or Cancelling, Crashed...
            message = f": {state.message}" if state.message else ""
            what = f"run {state.name.lower()}{message}"
            events.append(Event(state.at, "run-state", run, what, link=url))
    return events


def answer_event(
    run: str, url: str, pause_key: str, at: datetime, answer: Mapping[str, Any], actor: str
) -> Event:
    """What a person answered to the question `pause_key`, field by field."""
    details = tuple((name, shown) for name, value in answer.items() if (shown := _shown(value)))
    said = ", ".join(f"{name}: {value}" for name, value in details) or "resumed"
    what = f"{pause_key} answered ({said})"
    return Event(at, "answer", run, what, actor, pause_key, url, details)


def _shown(value: Any) -> str:
    """A form value as the timeline shows it; a pasted PEM block is named, not repeated."""
    text = str(value).strip() if value is not None else ""
    if "-----BEGIN " in text:
        lines = text.splitlines()
        kinds = sorted(
            {line.split("-----BEGIN ")[1].strip("- ") for line in lines if "-----BEGIN " in line}
        )
        return f"pasted {', '.join(kinds)} ({len(lines)} lines)"
    return " ".join(text.split())
