"""A person's view of the ticket chain, for `certrenew tickets`.

Auditors and support staff read the chain here when the tickets live in the
local tracker (on Jira they use Jira). Attachments are listed by name and
size only: a `.key` attached by the systems team is a secret and its bytes are
never printed. Ticket text is shown as plain text, never as console markup,
and without control characters (certrenew.printable): anyone can write a ticket.
Who wrote a comment or attached a file is shown when the tracker records it
(the local tracker does for what people add with `certrenew tickets comment` /
`attach`).
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from certrenew.adapters.tracker import AuthoredTracker, BrowsableTracker, TicketTracker
from certrenew.errors import TrackerError
from certrenew.printable import printable


def ticket_table(tracker: TicketTracker, label: str | None = None) -> RenderableType:
    """Every ticket (or those carrying `label`) with status, labels and links."""
    if label is not None:
        tickets = tracker.find_tickets(label)
    elif isinstance(tracker, BrowsableTracker):
        tickets = tracker.all_tickets()
    else:
        raise TrackerError(
            "this tracker lists tickets by label only: pass --label (e.g. the renewal's label)"
        )
    if not tickets:
        where = f"with label '{label}'" if label else "yet"
        return Text(f"No tickets {where}.")
    table = Table(title="Tickets", show_lines=False)
    for column in ("key", "status", "summary", "labels", "links"):
        table.add_column(column, overflow="fold")
    for ticket in tickets:
        table.add_row(
            Text(printable(ticket.key)),
            Text(printable(ticket.status)),
            Text(printable(ticket.summary)),
            Text(printable(", ".join(ticket.labels))),
            Text(printable(", ".join(_links(tracker, ticket.key)))),
        )
    return table


def ticket_detail(tracker: TicketTracker, key: str) -> RenderableType:
    """One ticket as the chain's story: description, links, comments, attachments."""
    ticket = tracker.get_ticket(key)
    parts: list[RenderableType] = [
        Text.assemble(
            (printable(ticket.key), "bold"),
            "  ",
            printable(ticket.summary),
            "  ",
            (printable(ticket.status), "cyan"),
        ),
        Text(printable(ticket.url), style="dim"),
        Text("labels: " + (printable(", ".join(ticket.labels)) or "none")),
    ]
    if isinstance(tracker, BrowsableTracker):
        parts += [_heading("Description"), Text(printable(tracker.description(key), lines=True))]
    parts += [
        _heading("Links"),
        Text(printable("\n".join(_links(tracker, key)), lines=True) or "none"),
    ]
    parts += [_heading("Comments"), _comments(tracker, key)]
    parts += [_heading("Attachments"), _attachments(tracker, key)]
    return Group(*parts)


def _links(tracker: TicketTracker, key: str) -> list[str]:
    if isinstance(tracker, BrowsableTracker):
        return [
            f"{'→' if link.outward else '←'} {link.other_key} ({link.link_type})"
            for link in tracker.directed_links(key)
        ]
    return [f"{link.other_key} ({link.link_type})" for link in tracker.links(key)]


def _comments(tracker: TicketTracker, key: str) -> RenderableType:
    if isinstance(tracker, BrowsableTracker):
        dated = [
            (f"{c.created:%Y-%m-%d %H:%M:%S} UTC", c.author, c.body)
            for c in tracker.dated_comments(key)
        ]
    else:
        dated = [(f"#{n}", "", body) for n, body in enumerate(tracker.comments(key), start=1)]
    if not dated:
        return Text("none")
    return Group(
        *(
            Text.assemble((when, "dim"), *_by(author), "\n", printable(body, lines=True), "\n")
            for when, author, body in dated
        )
    )


def _by(author: str) -> tuple[str | tuple[str, str], ...]:
    """`  anna` after a comment's date, as plain text (a login is never markup)."""
    return ("  ", (printable(author), "bold")) if author else ()


def _attachments(tracker: TicketTracker, key: str) -> RenderableType:
    if isinstance(tracker, AuthoredTracker):
        entries = [(e.attachment, e.author) for e in tracker.dated_attachments(key)]
    else:
        entries = [(attachment, "") for attachment in tracker.attachments(key)]
    if not entries:
        return Text("none")
    with_authors = any(author for _, author in entries)
    table = Table(show_header=True, box=None)
    table.add_column("name")
    table.add_column("size", justify="right")
    if with_authors:
        table.add_column("attached by")
    for attachment, author in entries:
        cells: list[RenderableType] = [
            Text(printable(attachment.filename)),
            f"{attachment.size} bytes",
        ]
        table.add_row(*cells, *([Text(printable(author))] if with_authors else []))
    return table


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")
