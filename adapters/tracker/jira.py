"""The ticket tracker on Jira Server/Data Center and Jira Cloud, over the `jira` library (REST v2).

Retries are ours, not the library's. Its `ResilientSession` replays any request
after a connection error, POSTs included: when Jira created the ticket and only
the answer was lost, the replay opens a second ticket. It also leaves 500/502/504
alone. So the session runs with `max_retries=0` and `_call` retries whole tracker
operations instead: each operation either is safe to repeat (reads, close after
a status check, link after a link check) or says how to recognise that a lost
attempt already happened (`already_done`), which is checked before repeating it.
That keeps one retry layer, one backoff policy and one place that turns HTTP
failures into the project's errors.

The library's `JIRAError` prints the request headers, the credentials among
them, so it never leaves this module: every failure becomes one of our errors,
raised outside the `except` block (no `__context__`), with a message built from
names, status codes and Jira's own error text only.

Atlassian's OpenAPI description marks almost no field of an answer required, so
every field is read as possibly absent: what the renewal can do without (a
status's category, a summary, a date) gets a fallback, and what it cannot (an
issue's key, an attachment's id, a comment's text) gives an `IncompleteAnswer`
naming the field, never a KeyError. The library reads some answers itself; its
KeyError or AttributeError on a missing field becomes the same error.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from jira import JIRA, JIRAError

from certrenew.adapters.tracker import (
    Attachment,
    AttachmentChange,
    Comment,
    DatedLink,
    Link,
    NewTicket,
    Ticket,
    TicketHistory,
    TicketLink,
    read_limited,
    too_large,
)
from certrenew.adapters.tracker.create_intents import CreateIntents, Intent
from certrenew.config import DEFAULT_MAX_ATTACHMENT_BYTES, JiraSettings
from certrenew.errors import (
    AuthenticationError,
    CertRenewError,
    ConfigError,
    TicketNotFound,
    TrackerError,
    Transient,
)
from certrenew.retry import GaveUp, RetryPolicy, retry_after_seconds, retrying

T = TypeVar("T")
log = logging.getLogger(__name__)
# What the `jira` library raises reading an answer without a field it needs
# (NotImplementedError: an answer with no field at all).
LIBRARY_READING = (KeyError, AttributeError, NotImplementedError)

TICKET_FIELDS = "summary,status,labels"
HISTORY_FIELDS = f"{TICKET_FIELDS},created,attachment,issuelinks"
CREDENTIAL_SETTINGS = (
    "CERTRENEW_JIRA__TOKEN (or jira.token_file) for a personal access token, or "
    "CERTRENEW_JIRA__USER with CERTRENEW_JIRA__PASSWORD (or jira.password_file) "
    "for a user with password or API token"
)
COMMENT_PAGE = 100


class IncompleteAnswer(TrackerError):
    """Jira answered without a field the step cannot do without."""


def _need(raw: dict[str, Any], name: str, what: str) -> Any:
    """`raw[name]`, or IncompleteAnswer saying which field of which answer was missing."""
    value = raw.get(name)
    if value is None:
        raise IncompleteAnswer(_incomplete(f"Jira answered {what} without its {name!r}"))
    return value


def _incomplete(missing: str) -> str:
    return (
        f"{missing}, which certrenew needs: check that jira.url points at "
        "Jira itself (not at a proxy that trims answers) and that the certrenew account "
        "may see that field, then resume the renewal"
    )


def _header_safe(token: str) -> str:
    """The token, if it can travel in an Authorization header; else a message that hides it.

    http.client refuses a header with a line break with a ValueError that quotes
    the header, the token in it; a tab or a non-ASCII character would reach Jira
    mangled and come back as a 401 that sends people to the wrong fix.
    """
    if token.isascii() and all(" " < char < "\x7f" for char in token):
        return token
    raise ConfigError(
        "the Jira token in CERTRENEW_JIRA__TOKEN (or the file jira.token_file names) holds "
        "a line break, a space or tab, or a character outside ASCII: a Jira token is one "
        "line of letters, digits and punctuation; copy it again from Jira and set it once more"
    )


def jql_string(value: str) -> str:
    """A JQL string literal: backslash and quote escaped, so no label can change the query."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def label_query(label: str) -> str:
    return f"labels = {jql_string(label)} ORDER BY created ASC"


class JiraTracker:
    """The runbook's tickets in Jira; the contract is TicketTracker's."""

    def __init__(
        self,
        settings: JiraSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        intents: CreateIntents | None = None,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    ):
        if not settings.url:
            raise ConfigError(
                "tracker = 'jira' needs jira.url: set it in the configuration file or "
                "CERTRENEW_JIRA__URL (e.g. https://jira.example.org)"
            )
        if urlsplit(settings.url).password is not None:
            # Every message names the URL: it must not carry a password.
            raise ConfigError(
                "jira.url contains a password: remove it and set "
                "CERTRENEW_JIRA__USER and CERTRENEW_JIRA__PASSWORD instead"
            )
        self.url = settings.url.rstrip("/")
        self.settings = settings
        self._auth = self._credentials(settings)
        # retry_attempts counts retries; the policy counts tries. A Retry-After above the
        # cap hands over to the flow: retrying sooner than Jira asked only gets refused.
        self._retry = RetryPolicy(
            settings.retry_attempts + 1,
            settings.retry_base_delay_seconds,
            settings.retry_max_delay_seconds,
            clamp_retry_after=False,
        )
        self._sleep = sleep
        self._clock = clock
        self._intents = intents or CreateIntents()
        self.max_attachment_bytes = max_attachment_bytes
        self._jira: JIRA | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: JiraSettings,
        intents: Path | None = None,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    ) -> JiraTracker:
        """Nothing is sent to Jira yet: the first operation connects and checks the credentials.

        `intents` is the folder where creates sent are recorded (see create_intents).
        """
        return cls(
            settings, intents=CreateIntents(intents), max_attachment_bytes=max_attachment_bytes
        )

    @staticmethod
    def _credentials(settings: JiraSettings) -> dict[str, Any]:
        token = (settings.secret_token() or "").strip()
        if token:
            return {"token_auth": _header_safe(token)}
        password = settings.secret_password()
        if settings.user and password:
            # HTTP basic auth (and requests) sends them as Latin-1. Checked without
            # encoding: a UnicodeEncodeError would carry the password along.
            if max(map(ord, f"{settings.user}:{password}")) < 256:
                return {"basic_auth": (settings.user, password)}
            raise ConfigError(
                "CERTRENEW_JIRA__USER or CERTRENEW_JIRA__PASSWORD (or jira.password_file) "
                "holds a character HTTP basic authentication cannot send (outside "
                "Latin-1): use an API token or personal access token instead"
            )
        raise ConfigError(f"Jira needs credentials: set {CREDENTIAL_SETTINGS}")

    # -- connection, retries and error translation -------------------------------------

    @property
    def is_cloud(self) -> bool:
        return self._client().deploymentType == "Cloud"

    def _client(self) -> JIRA:
        with self._lock:
            if self._jira is None:
                self._jira = self._call("connect to Jira", lambda _: self._connect(), connect=True)
            return self._jira

    def _connect(self) -> JIRA:
        """serverInfo (chooses the search API), then myself: bad credentials fail here, once."""
        verify: bool | str = str(self.settings.ca_bundle) if self.settings.ca_bundle else True
        jira = JIRA(
            server=self.url,
            options={"verify": verify},
            max_retries=0,
            timeout=self.settings.timeout_seconds,
            **self._auth,
        )
        jira.myself()
        return jira

    def _call(
        self,
        what: str,
        action: Callable[[JIRA], T],
        *,
        gone: CertRenewError | None = None,
        already_done: Callable[[JIRA], T | None] | None = None,
        connect: bool = False,
    ) -> T:
        """Run `action` with retries; translate every failure into an actionable project error.

        `retrying` raises the translations outside its `except` block, so no library
        exception (whose text carries the request headers) rides along as __context__.
        """

        def attempt(number: int) -> T:
            jira = None if connect else self._client()
            if number > 1 and already_done is not None and jira is not None:
                done = already_done(jira)
                if done is not None:
                    return done
            # None only for connect=True, whose action makes the client and ignores it.
            return action(jira)  # type: ignore[arg-type]

        return retrying(
            attempt,
            self._retry,
            classify=lambda exc: self._classify(what, exc, gone=gone, connect=connect),
            describe=lambda stop: self._gave_up(what, stop),
            sleep=self._sleep,
        )

    def _gave_up(self, what: str, stop: GaveUp) -> str:
        if stop.over_cap:
            return (
                f"Jira at {self.url} asks to wait {stop.last.retry_after:.0f} s before trying to "
                f"{what} ({stop.last.reason}): the renewal waits and tries again later"
            )
        tries = stop.attempts
        return (
            f"Jira at {self.url} did not {what} after {tries} attempt{'s' * (tries > 1)} "
            f"(last: {stop.last.reason}): the renewal waits and tries again later; check "
            "that Jira is up"
        )

    def _classify(
        self, what: str, exc: Exception, *, gone: CertRenewError | None, connect: bool
    ) -> Transient | CertRenewError | None:
        """Library failures as Transient or as the error to raise; None lets ours through."""
        if isinstance(exc, JIRAError):
            return self._failure(what, exc, gone=gone, connect=connect)
        if isinstance(exc, LIBRARY_READING) and _raised_in_library(exc):
            return IncompleteAnswer(
                _incomplete(f"Jira's answer when asked to {what} lacked {_missing_name(exc)}")
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return TrackerError(
                f"the TLS certificate of {self.url} is not trusted: set jira.ca_bundle to "
                "the CA bundle that issued it (a private CA), or fix jira.url"
            )
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return ConfigError(f"jira.url {self.url!r} is not a valid URL")
        if isinstance(exc, requests.ReadTimeout):
            return Transient(
                f"no answer within {self.settings.timeout_seconds:g} s (jira.timeout_seconds)"
            )
        if isinstance(exc, requests.RequestException):
            return Transient(f"no answer ({type(exc).__name__})")
        return None

    def _failure(
        self, what: str, exc: JIRAError, *, gone: CertRenewError | None, connect: bool
    ) -> Transient | CertRenewError:
        """The repeatable failures as Transient, the final ones as the error to raise."""
        status = exc.status_code
        if status == 429 or (status is not None and status >= 500):
            # Not `if exc.response`: a Response is falsy when its status is an error.
            header = exc.response.headers.get("Retry-After") if exc.response is not None else None
            return Transient(f"HTTP {status}", retry_after_seconds(header))
        if status == 401 or (status == 403 and connect):
            return AuthenticationError(
                f"Jira at {self.url} refused the credentials (HTTP {status}) while trying to "
                f"{what}: set {CREDENTIAL_SETTINGS}, and check that jira.url is the Jira "
                "they belong to"
            )
        if status == 404 and gone is not None:
            return gone
        detail = _jira_messages(exc)
        if status == 403:
            return TrackerError(
                f"Jira refused to {what} (HTTP 403, no permission{detail}): ask a Jira "
                "administrator to grant the certrenew account that permission"
            )
        code = f" (HTTP {status}{detail})" if status else detail
        return TrackerError(f"Jira refused to {what}{code}")

    def _gone(self, key: str) -> TicketNotFound:
        return TicketNotFound(
            f"{key} no longer exists in Jira (deleted by hand?) or the account can no longer "
            f"see it: restore the ticket or its permissions in {self.url}, then resume the "
            "renewal"
        )

    # -- the tracker interface ---------------------------------------------------------

    def create_ticket(self, new: NewTicket) -> Ticket:
        """Open the ticket, unless a create sent earlier without an answer made it already.

        Before each create its time is recorded; while Jira's search may still lag
        behind such a create (jira.timeout_seconds + jira.search_lag_seconds after
        it was sent), an empty search proves nothing, so it is repeated until the
        ticket shows or that time is over. Only then is the ticket opened again.
        """
        fields = self._fields(new)
        label = new.label

        def create(jira: JIRA) -> Ticket:
            sent_before = self._intents.last(label)
            if sent_before is not None:
                found = self._made_by(jira, label, sent_before)
                if found is not None:
                    return found
            sent = Intent(self._clock())
            self._intents.record(label, sent)
            try:
                ticket = self._ticket(jira.create_issue(fields=fields, prefetch=True))
            except JIRAError as exc:
                if _refused_before_creating(exc):
                    self._intents.forget(label)
                if exc.status_code is None or exc.status_code >= 300:
                    raise
                ticket = None  # created, but the library refuses an answer that names no key
            except requests.ConnectionError as exc:
                if isinstance(exc, requests.ConnectTimeout) or _refused_connection(exc):
                    self._intents.forget(label)
                raise
            if ticket is None:
                raise Transient("Jira's answer named no key for the new ticket")
            self._intents.record(label, Intent(sent.at, ticket.key))
            if sent_before is not None and sent_before.key is None:
                self._say_opened_again(jira, ticket, label, sent_before.at)
            return ticket

        return self._call(f"open the ticket {label!r} in {new.project}", create)

    def _made_by(self, jira: JIRA, label: str, sent: Intent) -> Ticket | None:
        """The ticket an earlier create made: read by key if Jira answered, else searched for
        until the search can be trusted to show it."""
        if sent.key is not None:
            try:
                return self._ticket(jira.issue(sent.key, fields=TICKET_FIELDS))
            except JIRAError as exc:
                if exc.status_code != 404:
                    raise
                return None  # deleted by hand since: open it again
        lag = self.settings.search_lag_seconds
        trusted_from = sent.at + self.settings.timeout_seconds + lag
        every = min(max(lag / 12, 0.1), 5.0)
        while True:
            found = self._find(jira, label)
            if found:
                return found[0]
            left = trusted_from - self._clock()
            if left <= 0:
                return None
            self._sleep(min(every, left))

    def _say_opened_again(self, jira: JIRA, ticket: Ticket, label: str, sent: float) -> None:
        """Tell people on the ticket, and the log, that a first create may yet show up."""
        when = datetime.fromtimestamp(sent, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        waited = self.settings.timeout_seconds + self.settings.search_lag_seconds
        said = (
            "certrenew opened this ticket again: Jira did not answer a first attempt sent at "
            f"{when}, and its search showed no ticket labelled {label} within {waited:.0f} s. "
            "If a ticket with that label from then appears, it is the same request: close it "
            f"as a duplicate of {ticket.key}, and raise jira.search_lag_seconds (Jira's search "
            f"lagged longer than {self.settings.search_lag_seconds:.0f} s)."
        )
        log.warning("%s: %s", ticket.key, said)
        jira.add_comment(ticket.key, said)

    def _fields(self, new: NewTicket) -> dict[str, Any]:
        """Explicit field dicts: the library never looks a project or issue type up by guess."""
        labels = list(dict.fromkeys([new.label, *new.labels]))
        fields: dict[str, Any] = {
            "project": {"key": new.project},
            "issuetype": {"name": new.issue_type},
            "summary": new.summary,
            "description": new.description,
            "labels": labels,
        }
        if self.settings.components:
            fields["components"] = [{"name": name} for name in self.settings.components]
        if new.assignee:
            # Cloud identifies people by account id only; Server/DC by user name.
            who = "accountId" if self.is_cloud else "name"
            fields["assignee"] = {who: new.assignee}
        fields.update(self.settings.custom_fields)
        fields.update(new.extra_fields)
        return fields

    def find_tickets(self, label: str) -> list[Ticket]:
        return self._call(f"search tickets labelled {label!r}", lambda j: self._find(j, label))

    def _find(self, jira: JIRA, label: str) -> list[Ticket]:
        # maxResults=False: every page (startAt/total on Server, nextPageToken on Cloud).
        issues = jira.search_issues(label_query(label), maxResults=False, fields=TICKET_FIELDS)
        return [self._ticket(issue) for issue in issues]

    def get_ticket(self, key: str) -> Ticket:
        return self._call(
            f"read {key}",
            lambda j: self._ticket(j.issue(key, fields=TICKET_FIELDS)),
            gone=self._gone(key),
        )

    def is_active_user(self, login: str) -> bool:
        """Whether Jira knows `login` (username on Server/DC, accountId on Cloud) as active."""

        def active(jira: JIRA) -> bool:
            try:
                return bool(getattr(jira.user(login), "active", True))
            except JIRAError as exc:
                if exc.status_code == 404:
                    return False
                raise

        return self._call(f"look up the user {login!r}", active)

    def _ticket(self, issue: Any) -> Ticket:
        raw: dict[str, Any] = issue.raw
        key = _need(raw, "key", "an issue")
        fields = raw.get("fields") or {}
        return Ticket(
            key=key,
            summary=fields.get("summary") or "",
            status=(fields.get("status") or {}).get("name") or "",
            labels=tuple(fields.get("labels") or ()),
            url=self.browse_url(key),
        )

    def browse_url(self, key: str) -> str:
        return f"{self.url}/browse/{key}"

    def reference(self, key: str) -> str:
        return f"[{key}]({self.browse_url(key)})"

    def link_tickets(self, from_key: str, to_key: str, link_type: str) -> None:
        def link(jira: JIRA) -> None:
            if self._linked(jira, from_key, to_key, link_type):
                return
            # Jira's issueLink: the outward issue is the one the link goes from.
            jira.create_issue_link(link_type, inwardIssue=to_key, outwardIssue=from_key)

        self._call(
            f"link {from_key} to {to_key} ({link_type})",
            link,
            gone=self._gone(f"{from_key} or {to_key}"),
        )

    def _linked(self, jira: JIRA, from_key: str, to_key: str, link_type: str) -> bool:
        for link in self._links(jira, from_key):
            if link.outward and (link.link_type.lower(), link.other_key) == (
                link_type.lower(),
                to_key,
            ):
                return True
        return False

    @staticmethod
    def _links(jira: JIRA, key: str) -> list[TicketLink]:
        fields = jira.issue(key, fields="issuelinks").raw.get("fields") or {}
        return [_ticket_link(raw, key) for raw in fields.get("issuelinks") or []]

    def links(self, key: str) -> list[Link]:
        def read(jira: JIRA) -> list[Link]:
            return [Link(link.link_type, link.other_key) for link in self._links(jira, key)]

        return self._call(f"read the links of {key}", read, gone=self._gone(key))

    def add_comment(self, key: str, body: str) -> None:
        def posted_already(jira: JIRA) -> bool | None:
            # Compared loosely: Jira Cloud stores v2 comments as ADF and may trim them.
            latest = [text.strip() for text in self._comments(jira, key)[-1:]]
            return True if latest == [body.strip()] else None

        self._call(
            f"comment on {key}",
            lambda j: bool(j.add_comment(key, body)),
            gone=self._gone(key),
            already_done=posted_already,
        )

    def comments(self, key: str) -> list[str]:
        return self._call(
            f"read the comments of {key}", lambda j: self._comments(j, key), gone=self._gone(key)
        )

    @classmethod
    def _comments(cls, jira: JIRA, key: str) -> list[str]:
        return [
            _need(comment, "body", f"a comment of {key}")
            for comment in cls._raw_comments(jira, key)
        ]

    @staticmethod
    def _raw_comments(jira: JIRA, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = jira.comments(
                key, start_at=len(found), max_results=COMMENT_PAGE, order_by="created"
            )
            found.extend(comment.raw for comment in page)
            if len(page) < COMMENT_PAGE:
                return found

    def add_attachment(self, key: str, filename: str, data: bytes) -> Attachment:
        if not data:
            raise TrackerError(f"refusing to attach the empty file {filename} to {key}")

        def upload(jira: JIRA) -> Attachment:
            return _attachment(jira.add_attachment(key, io.BytesIO(data), filename=filename).raw)

        def uploaded_already(jira: JIRA) -> Attachment | None:
            same = [
                a
                for a in self._attachments(jira, key)
                if (a.filename, a.size) == (filename, len(data))
            ]
            return same[0] if same else None

        return self._call(
            f"attach {filename} to {key}",
            upload,
            gone=self._gone(key),
            already_done=uploaded_already,
        )

    def attachments(self, key: str) -> list[Attachment]:
        return self._call(
            f"list the attachments of {key}",
            lambda j: self._attachments(j, key),
            gone=self._gone(key),
        )

    @staticmethod
    def _attachments(jira: JIRA, key: str) -> list[Attachment]:
        fields = jira.issue(key, fields="attachment").raw.get("fields") or {}
        return [_attachment(a) for a in fields.get("attachment") or []]

    def download_attachment(self, key: str, attachment: Attachment) -> bytes:
        what = f"download {attachment.filename} from {key}"

        def download(jira: JIRA) -> bytes:
            meta = jira.attachment(attachment.id)
            content = _need(meta.raw, "content", f"the attachment {attachment.filename}")
            if not _same_origin(content, self.url):
                # The session would send our credentials to wherever `content` points.
                raise TrackerError(
                    f"Jira gave {content} as the address of {attachment.filename}, "
                    f"outside {self.url}: check Jira's base URL setting against jira.url"
                )
            return self._limited_download(jira, key, attachment, meta.raw.get("size"), content)

        gone = TrackerError(
            f"{attachment.filename} is no longer attached to {key} (deleted by hand?): "
            "attach it again, then resume the renewal"
        )
        return self._call(what, download, gone=gone)

    def _limited_download(
        self, jira: JIRA, key: str, attachment: Attachment, declared: object, content: str
    ) -> bytes:
        """The content, refused unread above the limit: by the size Jira lists, by
        Content-Length, and while streaming when neither told the truth."""
        limit = self.max_attachment_bytes

        def refuse(size: int) -> Exception:
            return too_large(key, attachment.filename, size, limit)

        if isinstance(declared, int) and declared > limit:
            raise refuse(declared)
        # The library's Attachment.get() reads the whole body: the session is asked directly.
        response = jira._session.get(content, headers={"Accept": "*/*"}, stream=True)
        with contextlib.closing(response):
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                raise refuse(int(length))
            return read_limited(response.iter_content(64 * 1024), limit, refuse)

    def delete_attachment(self, key: str, attachment: Attachment) -> None:
        def delete(jira: JIRA) -> None:
            try:
                jira.delete_attachment(attachment.id)
            except JIRAError as exc:
                if exc.status_code != 404:  # already gone: what we wanted
                    raise

        self._call(f"delete {attachment.filename} from {key}", delete)

    def close_ticket(self, key: str) -> None:
        done = self.settings.done_transition

        def close(jira: JIRA) -> None:
            fields = jira.issue(key, fields="status").raw.get("fields") or {}
            status = fields.get("status") or {}
            category = (status.get("statusCategory") or {}).get("key")
            if category == "done":
                return
            available = jira.transitions(key)
            names = [str(t["name"]) for t in available if t.get("name")]
            chosen = [t for t in available if str(t.get("name")).lower() == done.lower()]
            if not chosen and category is None:
                # Jira did not say whether it is closed; a closed ticket offers no way to close.
                log.warning(
                    "%s: Jira gave no status category and offers no %r transition: taken as "
                    "already closed",
                    key,
                    done,
                )
                return
            if not chosen:
                raise TrackerError(
                    f"{key} (status {status.get('name') or '?'}) has no transition named {done!r} "
                    f"(available: {', '.join(sorted(names)) or 'none'}): set jira.done_transition "
                    "to the transition that closes tickets in this workflow"
                )
            try:
                jira.transition_issue(
                    key,
                    str(_need(chosen[0], "id", f"the {done!r} transition of {key}")),
                    fields=dict(self.settings.done_fields),
                )
                return
            except JIRAError as exc:
                if exc.status_code != 400:
                    raise
                refused = _jira_messages(exc)
            raise TrackerError(
                f"Jira refused the {done!r} transition on {key}{refused}: set jira.done_fields "
                "to the fields its screen requires, e.g. done_fields = "
                '{resolution = {name = "Done"}}'
            )

        self._call(f"close {key}", close, gone=self._gone(key))

    # -- what `certrenew history` reads ---------------------------------------------------

    def ticket_history(self, key: str) -> TicketHistory:
        """The ticket, its comments, and from Jira's changelog its attachments and links.

        The changelog is the only place that remembers a deleted attachment (the
        `.key`, once archived) and when a link was made.
        """

        def read(jira: JIRA) -> TicketHistory:
            issue = jira.issue(key, fields=HISTORY_FIELDS, expand="changelog")
            return _ticket_history(self._ticket(issue), issue.raw, self._raw_comments(jira, key))

        return self._call(f"read the history of {key}", read, gone=self._gone(key))

    # -- what `certrenew check jira` asks ----------------------------------------------

    def describe(self) -> str:
        info = self._call("read the server information", lambda j: j.server_info())
        return f"Jira {info.get('deploymentType', 'Server')} {info.get('version', '?')}"

    def whoami(self) -> str:
        me = self._call("read the current user", lambda j: j.myself())
        return str(me.get("displayName") or me.get("name") or me.get("accountId"))

    def project_issue_types(self, project: str) -> list[str] | None:
        """Issue type names of `project`, or None when Jira has no such project (for us)."""

        def read(jira: JIRA) -> list[str] | None:
            try:
                found = jira.project(project)
            except JIRAError as exc:
                if exc.status_code == 404:
                    return None
                raise
            types = _need(found.raw, "issueTypes", f"the project {project}")
            return [str(t["name"]) for t in types if t.get("name")]

        return self._call(f"read project {project}", read)

    def link_type_names(self) -> list[str]:
        return self._call(
            "list the issue link types",
            lambda j: [t.raw["name"] for t in j.issue_link_types(force=True) if t.raw.get("name")],
        )

    def transition_names(self, key: str) -> list[str]:
        return self._call(
            f"list the transitions of {key}",
            lambda j: [t["name"] for t in j.transitions(key) if t.get("name")],
            gone=self._gone(key),
        )


def _ticket_history(
    ticket: Ticket, raw: dict[str, Any], comments: list[dict[str, Any]]
) -> TicketHistory:
    """Undated entries are shown at the ticket's opening; undated changes are left out."""
    fields = raw.get("fields") or {}
    added: dict[str, AttachmentChange] = {}
    removed: list[AttachmentChange] = []
    linked: dict[str, datetime] = {}
    for entry in (raw.get("changelog") or {}).get("histories") or []:
        at, who = _jira_time(entry.get("created")), _person(entry.get("author"))
        if at is None:
            continue
        for item in entry.get("items") or []:
            if item.get("field") == "Attachment" and item.get("to"):
                added[item["to"]] = AttachmentChange(item.get("toString") or "", at, False, who)
            elif item.get("field") == "Attachment" and item.get("from"):
                removed.append(AttachmentChange(item.get("fromString") or "", at, True, who))
            elif item.get("field") == "Link" and item.get("to"):
                linked.setdefault(item["to"], at)
    dated = [c.at for c in [*added.values(), *removed]] + list(linked.values())
    opened = _jira_time(fields.get("created")) or min(dated, default=None) or datetime.now(UTC)
    for raw_attachment in fields.get("attachment") or []:  # also those a changelog left out
        attachment = _attachment(raw_attachment)
        added.setdefault(
            attachment.id,
            AttachmentChange(
                attachment.filename,
                _jira_time(raw_attachment.get("created")) or opened,
                False,
                _person(raw_attachment.get("author")),
            ),
        )
    links = []
    for raw_link in fields.get("issuelinks") or []:
        link = _ticket_link(raw_link, ticket.key)
        links.append(DatedLink(link, linked.get(link.other_key)))
    return TicketHistory(
        ticket,
        opened,
        tuple(
            Comment(
                _need(c, "body", f"a comment of {ticket.key}"),
                _jira_time(c.get("created")) or opened,
                _person(c.get("author")),
            )
            for c in comments
        ),
        tuple(links),
        tuple(sorted([*added.values(), *removed], key=lambda change: change.at)),
    )


def _ticket_link(raw: dict[str, Any], key: str) -> TicketLink:
    """One of `key`'s links; its type's name and the other issue's key are needed."""
    what = f"a link of {key}"
    outward = raw.get("outwardIssue") is not None
    other = _need(raw, "outwardIssue" if outward else "inwardIssue", what)
    link_type = _need(raw, "type", what)
    return TicketLink(_need(link_type, "name", what), _need(other, "key", what), outward)


def _jira_time(text: str | None) -> datetime | None:
    """Jira's `2026-11-23T10:15:00.000+0000` (or with a colon in the offset); None if absent."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z") if text else None


def _person(user: dict[str, Any] | None) -> str:
    """How Jira names a user to people: display name, else login or account id."""
    user = user or {}
    return str(user.get("displayName") or user.get("name") or user.get("accountId") or "")


def _attachment(raw: dict[str, Any]) -> Attachment:
    """An attachment's id is needed; an unknown name or size (-1) is not."""
    attachment_id = str(_need(raw, "id", "an attachment"))
    name = raw.get("filename") or f"attachment {attachment_id}"
    return Attachment(attachment_id, name, int(raw.get("size", -1)))


def _refused_before_creating(exc: JIRAError) -> bool:
    """Jira answered in a way that says it created nothing: a refusal, throttling, an outage.

    500, 502 and 504 are not among them: Jira (or a proxy in front of it) may
    say so after the ticket was created.
    """
    status = exc.status_code
    return status is not None and (400 <= status < 500 or status == 503)


def _refused_connection(exc: requests.ConnectionError) -> bool:
    """No connection was made (refused, no route, name unknown): nothing was sent."""
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), urllib3.exceptions.NewConnectionError)


def _raised_in_library(exc: BaseException) -> bool:
    """Whether the `jira` library itself raised `exc` (reading an answer), not our code."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and "/jira/" in frame.tb_frame.f_code.co_filename.replace("\\", "/")


def _missing_name(exc: Exception) -> str:
    """The missing field's name, never the answer the library may have put in the message."""
    if isinstance(exc, NotImplementedError):
        return "every field"
    if isinstance(exc, AttributeError):
        found = re.search(r"attribute '(\w+)'", str(exc))
        return repr(found[1]) if found else "a field"
    name = exc.args[0] if exc.args else ""
    found = re.match(r"'?(\w+)'?", str(name))
    return repr(found[1]) if found else "a field"


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _jira_messages(exc: JIRAError) -> str:
    """Jira's own explanation (field errors, JQL errors), never the request that caused it."""
    text = (exc.text or "").strip()
    return f": {text[:300]}" if text else ""
