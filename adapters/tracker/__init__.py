"""The ticket tracker seam: what the renewal needs from Jira (or its local stand-in).

A tracker is a handful of methods. Exactly-once creation is not the tracker's
job: `ensure_ticket` searches by the ticket's own label before it creates, so
every tracker gets the same guarantee from the same code. A tracker whose
search lags behind its writes (Jira) must not let an empty search after a
create it sent without hearing back open a second one: the Jira tracker covers
that inside `create_ticket` (see jira.py and create_intents.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from certrenew.errors import AttachmentTooLarge


@dataclass(frozen=True)
class Attachment:
    id: str
    filename: str
    size: int


@dataclass(frozen=True)
class Ticket:
    key: str
    summary: str
    status: str
    labels: tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True)
class Link:
    link_type: str
    other_key: str


@dataclass(frozen=True)
class NewTicket:
    """Everything needed to open one ticket; `label` identifies it for exactly-once."""

    project: str
    summary: str
    description: str
    label: str
    labels: tuple[str, ...] = ()
    assignee: str | None = None
    issue_type: str = "Task"
    extra_fields: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class TicketTracker(Protocol):
    """Jira in production, SQLite on a laptop; both pass tests/contract/tracker_contract.py."""

    def create_ticket(self, new: NewTicket) -> Ticket:
        """Open a ticket carrying `new.label` and `new.labels`. Not idempotent by itself."""
        ...

    def find_tickets(self, label: str) -> list[Ticket]:
        """Tickets carrying `label`, oldest first."""
        ...

    def get_ticket(self, key: str) -> Ticket:
        """Raises TicketNotFound when the ticket was deleted."""
        ...

    def link_tickets(self, from_key: str, to_key: str, link_type: str) -> None:
        """Link two tickets; linking twice leaves one link."""
        ...

    def links(self, key: str) -> list[Link]: ...

    def add_comment(self, key: str, body: str) -> None: ...

    def comments(self, key: str) -> list[str]: ...

    def add_attachment(self, key: str, filename: str, data: bytes) -> Attachment: ...

    def attachments(self, key: str) -> list[Attachment]: ...

    def download_attachment(self, key: str, attachment: Attachment) -> bytes:
        """The bytes; AttachmentTooLarge above the tracker's limit, refused unread."""
        ...

    def delete_attachment(self, key: str, attachment: Attachment) -> None: ...

    def close_ticket(self, key: str) -> None:
        """Move the ticket to its done state; closing a closed ticket does nothing."""
        ...

    def reference(self, key: str) -> str:
        """Ticket `key` as markdown a person can follow from a form or an artifact."""
        ...


@dataclass(frozen=True)
class Comment:
    body: str
    created: datetime
    # Who wrote it, when the tracker knows; "" for the renewal's own comments.
    author: str = ""


@dataclass(frozen=True)
class TicketLink:
    """A link as a person reads it: outward (this ticket links to) or inward."""

    link_type: str
    other_key: str
    outward: bool


@runtime_checkable
class BrowsableTracker(Protocol):
    """What a tracker offers beyond the renewal's needs, so a person can browse the chain."""

    def all_tickets(self) -> list[Ticket]: ...

    def description(self, key: str) -> str: ...

    def directed_links(self, key: str) -> list[TicketLink]: ...

    def dated_comments(self, key: str) -> list[Comment]: ...


@dataclass(frozen=True)
class AttachmentEntry:
    """An attachment as a person reads it: when and by whom ("" when unknown) it came."""

    attachment: Attachment
    created: datetime
    author: str = ""


@runtime_checkable
class AuthoredTracker(Protocol):
    """What a person does in a ticket by hand, under their own name.

    `certrenew tickets attach` and `comment` need it. The local tracker offers
    it; on Jira people attach and comment in Jira itself, which records who did.
    """

    def add_comment_as(self, key: str, body: str, author: str) -> Comment: ...

    def add_attachment_as(
        self, key: str, filename: str, data: bytes, author: str
    ) -> Attachment: ...

    def dated_attachments(self, key: str) -> list[AttachmentEntry]: ...


@runtime_checkable
class UserDirectory(Protocol):
    """A tracker that knows its people: roles refuse logins that are not active users."""

    def is_active_user(self, login: str) -> bool: ...


@dataclass(frozen=True)
class AttachmentChange:
    """An attachment put on a ticket or taken off it (the `.key`, once archived)."""

    filename: str
    at: datetime
    removed: bool = False
    author: str = ""  # "" when unknown, or the renewal itself on the local tracker


@dataclass(frozen=True)
class DatedLink:
    link: TicketLink
    created: datetime | None = None  # None when the tracker did not record when


@dataclass(frozen=True)
class TicketHistory:
    """Everything that happened on one ticket that an auditor asks about, dated."""

    ticket: Ticket
    created: datetime
    comments: tuple[Comment, ...]
    links: tuple[DatedLink, ...]
    attachments: tuple[AttachmentChange, ...]


@runtime_checkable
class AuditableTracker(Protocol):
    """A tracker that keeps a ticket's history, removed attachments included.

    `certrenew history` reads it to show an auditor the chain without opening the tracker.
    """

    def ticket_history(self, key: str) -> TicketHistory: ...


def ensure_ticket(tracker: TicketTracker, new: NewTicket) -> Ticket:
    """Open the ticket unless one with its label exists: a lost cache write never doubles it."""
    existing = tracker.find_tickets(new.label)
    if existing:
        return existing[0]
    return tracker.create_ticket(new)


def too_large(key: str, filename: str, size: int, limit: int) -> AttachmentTooLarge:
    """The refusal of an attachment above `limit` bytes (`size`: what is known of it)."""
    return AttachmentTooLarge(
        f"{filename} on {key} is larger than {_kib(limit)} ({_kib(size)} or more), the "
        "limit for files the renewal reads (tickets.max_attachment_bytes): a certificate, "
        f"CSR, key or .p12 is a few KiB, so remove {filename} from {key} and attach the "
        "right file"
    )


def read_limited(chunks: Iterable[bytes], limit: int, refuse: Callable[[int], Exception]) -> bytes:
    """Join `chunks`, stopping with `refuse(bytes seen)` as soon as they pass `limit`.

    A download whose size was not declared (or was declared wrongly) is read
    only up to the limit, never whole.
    """
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise refuse(len(body))
    return bytes(body)


@dataclass(frozen=True)
class ReadAttachments:
    """A ticket's attachments read, oldest first, and why any were left unread."""

    files: list[tuple[Attachment, bytes]]
    refused: list[str]


def read_attachments(tracker: TicketTracker, key: str) -> ReadAttachments:
    """Every attachment of `key` with its bytes; one too large is refused, not read.

    A person may attach anything to a ticket (a screenshot, a log): one file
    too large to be a certificate must not stop the renewal finding the
    certificate beside it, so it is set aside with the reason.
    """
    files: list[tuple[Attachment, bytes]] = []
    refused: list[str] = []
    for attachment in tracker.attachments(key):
        try:
            files.append((attachment, tracker.download_attachment(key, attachment)))
        except AttachmentTooLarge as exc:
            refused.append(str(exc))
    return ReadAttachments(files, refused)


def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MiB"
