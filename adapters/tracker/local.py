"""The ticket tracker on this machine: one SQLite file standing in for Jira.

The renewal flow, the demo's systems team and `certrenew tickets` use the file
from different processes at once, so every call opens its own connection, the
database runs in WAL mode (readers never block the writer) and writers wait on
a busy timeout instead of failing. A ticket key is allocated and its ticket
written in one IMMEDIATE transaction, so two processes never get the same key.

Tickets take their shape from the Jira settings (projects, done state, extra
labels) so that a chain looks the same on either tracker.

Comments and attachments record their author, as Jira does, when a person adds
them (`certrenew tickets comment` / `attach`); the renewal's own have none ("").
Databases written before the author was recorded gain the column when opened.
A deleted attachment leaves its name, dates and author behind (never its bytes),
so a ticket's history shows that the `.key` was there and when it left.

The file holds private keys while they wait to be archived, so it is created
readable by its owner only (0600, as are the journal files SQLite makes beside
it), and a deleted attachment's bytes are overwritten, not merely unlinked from
the table (`secure_delete`, then the write-ahead log emptied).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from certrenew.adapters.tracker import (
    Attachment,
    AttachmentChange,
    AttachmentEntry,
    Comment,
    DatedLink,
    Link,
    NewTicket,
    Ticket,
    TicketHistory,
    TicketLink,
    too_large,
)
from certrenew.config import DEFAULT_MAX_ATTACHMENT_BYTES
from certrenew.errors import ServiceUnavailable, TicketNotFound, TrackerError

OPEN_STATUS = "Open"
# Long enough for a writer to finish a large attachment on a loaded laptop.
BUSY_TIMEOUT_SECONDS = 30.0

_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    project TEXT PRIMARY KEY,
    last_number INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    key TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    number INTEGER NOT NULL,
    summary TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    issue_type TEXT NOT NULL,
    assignee TEXT,
    created TEXT NOT NULL,
    UNIQUE (project, number)
);
CREATE TABLE IF NOT EXISTS labels (
    key TEXT NOT NULL REFERENCES tickets (key),
    position INTEGER NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (key, label)
);
CREATE INDEX IF NOT EXISTS labels_by_label ON labels (label);
CREATE TABLE IF NOT EXISTS links (
    key TEXT NOT NULL REFERENCES tickets (key),
    other_key TEXT NOT NULL REFERENCES tickets (key),
    link_type TEXT NOT NULL,
    outward INTEGER NOT NULL,
    PRIMARY KEY (key, other_key, link_type)
);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL REFERENCES tickets (key),
    body TEXT NOT NULL,
    created TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS removed_attachments (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL REFERENCES tickets (key),
    filename TEXT NOT NULL,
    created TEXT NOT NULL,
    author TEXT NOT NULL,
    removed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL REFERENCES tickets (key),
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT ''
);
"""
# Columns added after the first release: (table, column, definition). A database
# created before gets them on first open; rows already there read as "".
_ADDED_COLUMNS = (
    ("comments", "author", "TEXT NOT NULL DEFAULT ''"),
    ("attachments", "author", "TEXT NOT NULL DEFAULT ''"),
    ("links", "created", "TEXT NOT NULL DEFAULT ''"),
)


class LocalTracker:
    """TicketTracker on SQLite; for the CLI also BrowsableTracker, AuthoredTracker and
    AuditableTracker."""

    def __init__(
        self,
        path: Path,
        done_status: str = "Done",
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    ) -> None:
        self.path = path.resolve()
        self.done_status = done_status
        self.max_attachment_bytes = max_attachment_bytes
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _owner_only(self.path)
        except OSError as exc:
            raise self._unusable(exc) from None
        with self._connection() as db:
            # WAL is a property of the file: set once, by whoever creates it.
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._add_missing_columns(db)

    # --- TicketTracker ---------------------------------------------------------------

    def create_ticket(self, new: NewTicket) -> Ticket:
        if not _PROJECT_KEY.match(new.project):
            raise TrackerError(
                f"'{new.project}' is not a project key (upper-case letters and digits, e.g. "
                "SIS): fix tickets.csr_project / owner_project / install_project"
            )
        labels = tuple(dict.fromkeys((new.label, *new.labels)))
        with self._connection() as db, _transaction(db):
            row = db.execute(
                "INSERT INTO counters (project, last_number) VALUES (?, 1) "
                "ON CONFLICT (project) DO UPDATE SET last_number = last_number + 1 "
                "RETURNING last_number",
                (new.project,),
            ).fetchone()
            key = f"{new.project}-{row[0]}"
            db.execute(
                "INSERT INTO tickets (key, project, number, summary, description, status, "
                "issue_type, assignee, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    new.project,
                    row[0],
                    new.summary,
                    new.description,
                    OPEN_STATUS,
                    new.issue_type,
                    new.assignee,
                    _now(),
                ),
            )
            db.executemany(
                "INSERT INTO labels (key, position, label) VALUES (?, ?, ?)",
                [(key, n, label) for n, label in enumerate(labels)],
            )
        return Ticket(key, new.summary, OPEN_STATUS, labels, self.url(key))

    def find_tickets(self, label: str) -> list[Ticket]:
        with self._connection() as db:
            keys = [
                row[0]
                for row in db.execute(
                    "SELECT t.key FROM tickets t JOIN labels l ON l.key = t.key "
                    "WHERE l.label = ? ORDER BY t.rowid",
                    (label,),
                )
            ]
            return [self._ticket(db, key) for key in keys]

    def get_ticket(self, key: str) -> Ticket:
        with self._connection() as db:
            return self._ticket(db, key)

    def link_tickets(self, from_key: str, to_key: str, link_type: str) -> None:
        if from_key == to_key:
            raise TrackerError(f"cannot link {from_key} to itself: name two different tickets")
        with self._connection() as db, _transaction(db):
            self._require(db, from_key)
            self._require(db, to_key)
            db.executemany(
                "INSERT OR IGNORE INTO links (key, other_key, link_type, outward, created) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (from_key, to_key, link_type, 1, now := _now()),
                    (to_key, from_key, link_type, 0, now),
                ],
            )

    def links(self, key: str) -> list[Link]:
        return [Link(link.link_type, link.other_key) for link in self.directed_links(key)]

    def add_comment(self, key: str, body: str) -> None:
        self.add_comment_as(key, body, "")

    def comments(self, key: str) -> list[str]:
        return [comment.body for comment in self.dated_comments(key)]

    def add_attachment(self, key: str, filename: str, data: bytes) -> Attachment:
        return self.add_attachment_as(key, filename, data, "")

    def attachments(self, key: str) -> list[Attachment]:
        with self._connection() as db:
            self._require(db, key)
            return [
                Attachment(str(row[0]), row[1], row[2])
                for row in db.execute(
                    "SELECT id, filename, size FROM attachments WHERE key = ? ORDER BY id",
                    (key,),
                )
            ]

    def download_attachment(self, key: str, attachment: Attachment) -> bytes:
        with self._connection() as db:
            self._require(db, key)
            # The size first, from the column SQLite keeps apart: a blob too large is never read.
            found = db.execute(
                "SELECT length(data) FROM attachments WHERE key = ? AND id = ?",
                (key, attachment.id),
            ).fetchone()
            if found is not None and found[0] > self.max_attachment_bytes:
                raise too_large(key, attachment.filename, found[0], self.max_attachment_bytes)
            row = db.execute(
                "SELECT data FROM attachments WHERE key = ? AND id = ?", (key, attachment.id)
            ).fetchone()
        if row is None:
            raise TrackerError(
                f"{key} no longer has the attachment '{attachment.filename}' (deleted?): "
                "ask for the file to be attached again"
            )
        return bytes(row[0])

    def delete_attachment(self, key: str, attachment: Attachment) -> None:
        """Deleting an attachment that is already gone leaves the ticket as wanted.

        The bytes are overwritten with zeros in the file and the write-ahead log
        is emptied, so a removed `.key` cannot be read back from the disk. A
        reader holding the log open at that moment leaves it for the next delete.
        """
        with self._connection() as db:
            db.execute("PRAGMA secure_delete = ON")
            with _transaction(db):
                self._require(db, key)
                db.execute(
                    "INSERT OR IGNORE INTO removed_attachments "
                    "(id, key, filename, created, author, removed) "
                    "SELECT id, key, filename, created, author, ? FROM attachments "
                    "WHERE key = ? AND id = ?",
                    (_now(), key, attachment.id),
                )
                db.execute(
                    "DELETE FROM attachments WHERE key = ? AND id = ?", (key, attachment.id)
                )
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close_ticket(self, key: str) -> None:
        with self._connection() as db, _transaction(db):
            self._require(db, key)
            db.execute("UPDATE tickets SET status = ? WHERE key = ?", (self.done_status, key))

    # --- what a person needs beyond the renewal: the CLI view ----------------------

    def url(self, key: str) -> str:
        """Where a person finds the ticket: the database file, with the key as fragment.

        `certrenew tickets <key>` shows it; the URI names both the file and the key.
        """
        return f"{self.path.as_uri()}#{key}"

    def reference(self, key: str) -> str:
        """The command that shows the ticket: the local tracker has no web page."""
        return f"**{key}** (`certrenew tickets {key}`)"

    def all_tickets(self) -> list[Ticket]:
        with self._connection() as db:
            keys = [row[0] for row in db.execute("SELECT key FROM tickets ORDER BY rowid")]
            return [self._ticket(db, key) for key in keys]

    def description(self, key: str) -> str:
        with self._connection() as db:
            self._require(db, key)
            row = db.execute("SELECT description FROM tickets WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def directed_links(self, key: str) -> list[TicketLink]:
        with self._connection() as db:
            self._require(db, key)
            return [
                TicketLink(row[0], row[1], bool(row[2]))
                for row in db.execute(
                    "SELECT link_type, other_key, outward FROM links WHERE key = ? ORDER BY rowid",
                    (key,),
                )
            ]

    def dated_comments(self, key: str) -> list[Comment]:
        with self._connection() as db:
            self._require(db, key)
            return [
                Comment(row[0], datetime.fromisoformat(row[1]), row[2])
                for row in db.execute(
                    "SELECT body, created, author FROM comments WHERE key = ? ORDER BY id",
                    (key,),
                )
            ]

    # --- AuthoredTracker: what a person adds by hand, under their name -------------

    def add_comment_as(self, key: str, body: str, author: str) -> Comment:
        created = _now()
        with self._connection() as db, _transaction(db):
            self._require(db, key)
            db.execute(
                "INSERT INTO comments (key, body, created, author) VALUES (?, ?, ?, ?)",
                (key, body, created, author),
            )
        return Comment(body, datetime.fromisoformat(created), author)

    def add_attachment_as(self, key: str, filename: str, data: bytes, author: str) -> Attachment:
        if not filename or "/" in filename or "\\" in filename:
            raise TrackerError(
                f"'{filename}' is not a file name (no folders): attach the file by its name only"
            )
        with self._connection() as db, _transaction(db):
            self._require(db, key)
            cursor = db.execute(
                "INSERT INTO attachments (key, filename, size, data, created, author) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, filename, len(data), data, _now(), author),
            )
        return Attachment(str(cursor.lastrowid), filename, len(data))

    def dated_attachments(self, key: str) -> list[AttachmentEntry]:
        with self._connection() as db:
            self._require(db, key)
            return [
                AttachmentEntry(
                    Attachment(str(row[0]), row[1], row[2]),
                    datetime.fromisoformat(row[3]),
                    row[4],
                )
                for row in db.execute(
                    "SELECT id, filename, size, created, author FROM attachments "
                    "WHERE key = ? ORDER BY id",
                    (key,),
                )
            ]

    # --- AuditableTracker: the ticket's history, removals included -----------------

    def ticket_history(self, key: str) -> TicketHistory:
        with self._connection() as db:
            ticket = self._ticket(db, key)
            (created,) = db.execute("SELECT created FROM tickets WHERE key = ?", (key,)).fetchone()
            links = tuple(
                DatedLink(
                    TicketLink(row[0], row[1], bool(row[2])),
                    datetime.fromisoformat(row[3]) if row[3] else None,
                )
                for row in db.execute(
                    "SELECT link_type, other_key, outward, created FROM links WHERE key = ? "
                    "ORDER BY rowid",
                    (key,),
                )
            )
            kept = db.execute(
                "SELECT id, filename, created, author, '' FROM attachments WHERE key = ?", (key,)
            ).fetchall()
            removed = db.execute(
                "SELECT id, filename, created, author, removed FROM removed_attachments "
                "WHERE key = ?",
                (key,),
            ).fetchall()
        changes: list[AttachmentChange] = []
        for _, filename, added, author, gone in sorted(kept + removed):
            changes.append(AttachmentChange(filename, datetime.fromisoformat(added), False, author))
            if gone:
                changes.append(AttachmentChange(filename, datetime.fromisoformat(gone), True))
        return TicketHistory(
            ticket,
            datetime.fromisoformat(created),
            tuple(self.dated_comments(key)),
            links,
            tuple(sorted(changes, key=lambda change: change.at)),
        )

    # --- internals -------------------------------------------------------------------

    def _add_missing_columns(self, db: sqlite3.Connection) -> None:
        """Bring a database of an earlier release up to _SCHEMA (see _ADDED_COLUMNS).

        Checked without a lock first, so opening an up-to-date database never
        waits for a writer; re-checked under the write lock, so two processes
        opening an old database add each column once.
        """
        if not self._missing_columns(db):
            return
        with _transaction(db):
            for table, column, definition in self._missing_columns(db):
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    @staticmethod
    def _missing_columns(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
        present: dict[str, set[str]] = {}
        for table, _, _ in _ADDED_COLUMNS:
            if table not in present:
                present[table] = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        return [added for added in _ADDED_COLUMNS if added[1] not in present[added[0]]]

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection per call, so threads and processes never share one."""
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) where we write.
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        try:
            db.execute("PRAGMA foreign_keys = ON")
            yield db
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise ServiceUnavailable(
                    f"the local ticket database {self.path} stayed locked for "
                    f"{BUSY_TIMEOUT_SECONDS:g} s by another process: the step can be retried"
                ) from None
            raise self._unusable(exc) from None
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        finally:
            db.close()

    def _unusable(self, exc: Exception) -> TrackerError:
        return TrackerError(
            f"cannot use the local ticket database {self.path}: {exc}; check that data_dir "
            "points to a writable folder holding only certrenew's own files"
        )

    def _ticket(self, db: sqlite3.Connection, key: str) -> Ticket:
        row = db.execute("SELECT summary, status FROM tickets WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise self._not_found(key)
        labels = tuple(
            r[0]
            for r in db.execute("SELECT label FROM labels WHERE key = ? ORDER BY position", (key,))
        )
        return Ticket(key, row[0], row[1], labels, self.url(key))

    def _require(self, db: sqlite3.Connection, key: str) -> None:
        if db.execute("SELECT 1 FROM tickets WHERE key = ?", (key,)).fetchone() is None:
            raise self._not_found(key)

    def _not_found(self, key: str) -> TicketNotFound:
        return TicketNotFound(
            f"ticket {key} does not exist in the local tracker {self.path}: it was deleted or "
            "the data folder changed; check data_dir, or let the step open a new ticket"
        )


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """IMMEDIATE takes the write lock up front, so concurrent writers queue, never deadlock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _owner_only(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it; tighten one made by hand."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def _now() -> str:
    return datetime.now(UTC).isoformat()
