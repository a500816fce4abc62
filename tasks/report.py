"""The renewal's page for people: one markdown artifact, kept up to date as the run goes.

A support person opening the run in the Prefect UI sees which certificate it
renews, the ticket chain with links, the CA and request number, where the
files were archived, the old and new serial, who answered what and when, and
what the run waits for now, without opening a ticket.

A resumed run goes through the flow again from the top and publishes the same
page again; a page identical to the latest version is not published twice, so
the artifact's history shows one version per change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prefect.runtime import flow_run

from certrenew.adapters.wiring import RenewalContext
from certrenew.renewal import RenewalStart, RenewalTickets


@dataclass(frozen=True)
class Answered:
    """A person's answer to one question, as the report lists it."""

    question: str
    who: str
    at: str


# Answers given in this flow run, in the order the run met them (replays meet them again).
_answers: dict[str, dict[str, Answered]] = {}
# The markdown last published (or found published) per artifact key, in this process.
_published: dict[str, str] = {}


def record_answer(answered: Answered) -> None:
    """Remember an accepted answer for the report of the running flow run."""
    _answers.setdefault(flow_run.get_id() or "", {})[answered.question] = answered


@dataclass
class RenewalReport:
    """What the renewal knows so far; `publish` renders it and updates the artifact."""

    ctx: RenewalContext
    start: RenewalStart
    tickets: RenewalTickets | None = None
    facts: dict[str, str] = field(default_factory=dict)

    def publish(self, now: str, **facts: str) -> None:
        """Add `facts` (shown in the table in the order first given) and say what happens `now`."""
        self.facts |= {name: value for name, value in facts.items() if value}
        answers = _answers.get(flow_run.get_id() or "", {})
        markdown = render_report(self, now, list(answers.values()))
        publish_markdown(report_key(self.start.id), markdown, f"Renewal of {self.start.domain}")


FACT_TITLES = {
    "ca": "CA",
    "ca_request": "Request number",
    "urgent": "Urgent channel",
    "archive": "Archive folder",
    "new_certificate": "New certificate",
    "verified": "In service",
    "retired": "Old certificate",
}


def render_report(report: RenewalReport, now: str, answers: list[Answered]) -> str:
    """The report's markdown: plain text from outside is shown in code spans."""
    start, ctx = report.start, report.ctx
    rows = [
        ("Certificate", f"`{start.domain}` (inventory `{start.name}`)"),
        (
            "Old certificate",
            f"serial `{start.old.serial}`, expires {start.old.not_after:%Y-%m-%d}",
        ),
    ]
    tickets = report.tickets
    if tickets is not None:
        for title, key in (
            ("CSR ticket", tickets.csr),
            ("Service owner ticket", tickets.owner),
            ("Install ticket", tickets.install),
        ):
            if key:
                rows.append((title, ctx.tracker.reference(key)))
    rows += [(FACT_TITLES[name], value) for name, value in report.facts.items()]
    lines = [
        f"# Renewal of {start.domain}",
        "",
        f"**Now:** {now}",
        "",
        "| | |",
        "|---|---|",
        *(f"| {title} | {value} |" for title, value in rows),
    ]
    if answers:
        lines += ["", "## Answers", "", "| When | Question | Who |", "|---|---|---|"]
        lines += [f"| {a.at} | {a.question} | {a.who} |" for a in answers]
    lines += ["", f"Renewal `{start.id}`."]
    return "\n".join(lines) + "\n"


def report_key(renewal: str) -> str:
    """An artifact key Prefect accepts (lower-case letters, digits, dashes) for the renewal."""
    return re.sub(r"[^a-z0-9-]+", "-", renewal.lower())


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """Create a new version of artifact `key` unless its latest version says the same."""
    from prefect.artifacts import create_markdown_artifact

    if key not in _published:
        _published[key] = _latest_markdown(key)
    if _published[key] == markdown:
        return
    create_markdown_artifact(markdown=markdown, key=key, description=description)
    _published[key] = markdown


def _latest_markdown(key: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        latest = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(latest[0].data) if latest else ""
