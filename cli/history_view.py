"""A certificate's renewals as a person reads them, for `certrenew history`.

First what auditors ask (who chose the CA, who filed the request and its
number, who retired the old certificate and when: the answers given in the
forms), then the whole timeline. Every text from a ticket or a form is a
`Text`, never console markup, so a `[certrenew:...]` marker or a bracket in a
comment is shown as written, and its control characters are removed.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from certrenew.history import CertificateHistory, Event, RenewalHistory
from certrenew.printable import printable


def history_view(history: CertificateHistory) -> RenderableType:
    title = Text.assemble((printable(history.name), "bold"), f" ({printable(history.domain)})")
    if not history.renewals:
        return Text.assemble(title, ": no renewal has run yet (the renewal flow has no run for it)")
    count = len(history.renewals)
    parts: list[RenderableType] = [Text.assemble(title, f": {count} renewal{'s' * (count > 1)}")]
    for renewal in history.renewals:
        parts += _renewal(renewal)
    return Group(*parts)


def _renewal(renewal: RenewalHistory) -> list[RenderableType]:
    name = renewal.renewal or (
        "none: runs that stopped or wait before step 0 named the certificate to replace"
    )
    runs = ", ".join(f"{run.name} ({run.state}) {run.url}" for run in renewal.runs)
    parts: list[RenderableType] = [
        Text(f"\nRenewal {printable(name)}", style="bold underline"),
        Text("tickets: " + (printable(", ".join(renewal.tickets)) or "none")),
        Text("runs: " + (printable(runs) or "none")),
    ]
    if renewal.answers:
        parts += [Text("\nAnswers given in the forms", style="bold"), _table(renewal.answers)]
    parts += [Text("\nTimeline", style="bold"), _table(renewal.events)]
    return parts


def _table(events: tuple[Event, ...]) -> Table:
    table = Table(show_header=True, box=None, pad_edge=False)
    for column in ("when (UTC)", "where", "step", "what", "who"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            Text(f"{event.at:%Y-%m-%d %H:%M:%S}", style="dim"),
            Text(printable(event.where)),
            Text(printable(event.step)),
            Text(printable(event.what, lines=True)),
            Text(printable(event.actor), style="bold"),
        )
    return table
