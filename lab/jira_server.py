"""A Jira-compatible HTTP server for the tests: what the `jira` library calls, nothing more.

It answers REST v2 the way Jira does (shapes checked against Atlassian's OpenAPI
description by tests/jira_openapi.py), as a Server/Data Center or a Cloud
deployment: `serverInfo.deploymentType` decides which search API exists
(`/search` with startAt/total on Server, `/search/jql` with nextPageToken on
Cloud; the other one answers 404 or 410 as the real ones do). Like Jira, it
records attachments added and deleted and links made in each issue's changelog
(`expand=changelog`), stamped with the wall clock. It keeps every
exchange in `exchanges` for assertions and injects failures on demand: an HTTP
status (401, 403, 404, 429 with Retry-After, 5xx), a dropped connection before
the request is handled, a lost answer after it was (the issue exists, the
client never hears about it), or an answer held longer than the client waits
(`stall`). It can go down (connections refused) and come back on the same
port, with another certificate if told (certrenew.lab.listener). On command it
leaves out of its answers the fields Atlassian's OpenAPI description does not
mark required (`omit_optional`), and
its search lags behind creates as Jira's index does (`search_lag_seconds`: an
issue shows in searches only that long after it was created; reading it by key
works at once).

Runs on 127.0.0.1, port chosen by the OS, in a daemon thread. For trying the
product by hand (e.g. `certrenew demo --unattended` with `tracker = "jira"`):

    python -m certrenew.lab.jira_server [--cloud] [--port 8088]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlsplit

from certrenew.lab.jira_optional import OptionalFields
from certrenew.lab.listener import Listener

API = "/rest/api/2"
EPOCH = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STATUS_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES = {
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "Done": ("10001", "done"),
}
FIELDS = [
    ("summary", "Summary", "string"),
    ("description", "Description", "string"),
    ("labels", "Labels", "array"),
    ("status", "Status", "status"),
    ("issuetype", "Issue Type", "issuetype"),
    ("project", "Project", "project"),
    ("assignee", "Assignee", "user"),
    ("components", "Component/s", "array"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
    ("attachment", "Attachment", "array"),
    ("issuelinks", "Linked Issues", "array"),
    ("comment", "Comment", "comments-page"),
    ("customfield_10100", "Certificate domain", "string"),
]


def jira_time(moment: datetime) -> str:
    """Jira's timestamp form: milliseconds and an offset without a colon."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


class JqlError(ValueError):
    pass


@dataclass
class Exchange:
    """One request and what the server did with it (status None: connection dropped)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    request_headers: dict[str, str]
    request_body: bytes
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    fault: str | None = None

    def json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None


@dataclass
class Fault:
    """A failure to inject on matching requests, `times` times (None: until cleared)."""

    kind: str  # "status" | "drop" | "lose_response" | "stall"
    method: str | None = None
    path: str = ""
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1
    seconds: float = 0.0  # how long a stall holds the answer
    then_down: bool = False  # after a lost answer, the server goes down

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and re.search(self.path, path) is not None


@dataclass
class Issue:
    id: str
    key: str
    project: str
    fields: dict[str, Any]
    created: datetime
    status: str = "To Do"
    comments: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    # Jira's change history (`expand=changelog`): attachments added and deleted, links made.
    changelog: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StoredAttachment:
    id: str
    issue: str
    filename: str
    data: bytes
    mime_type: str
    created: datetime


class JiraServer:
    """State of one fake Jira and the HTTP server in front of it."""

    def __init__(
        self,
        deployment: str = "Server",
        *,
        token: str | None = "test-token-do-not-log",
        user: str | None = None,
        password: str | None = None,
        projects: dict[str, list[str]] | None = None,
        link_types: tuple[str, ...] = ("Relates", "Blocks"),
        done_transition: str = "Done",
        components: tuple[str, ...] = ("Certificats",),
        page_size: int = 100,
        done_requires: tuple[str, ...] = (),
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        if deployment not in ("Server", "Cloud"):
            raise ValueError("deployment is 'Server' or 'Cloud'")
        self.deployment = deployment
        self.token, self.user, self.password = token, user, password
        self.projects = (
            projects if projects is not None else {"SIS": ["Task", "Bug"], "ST": ["Task"]}
        )
        self.link_types = link_types
        self.done_transition = done_transition
        self.components = components
        self.page_size = page_size
        self.done_requires = done_requires  # fields the done transition's screen requires
        # People Jira knows, for assignees: the tests' and the shipped examples' owners.
        self.users = {
            "svc-certrenew",
            "owner-seu",
            "557058:owner-seu",
            "service-owner-login",
            "api-owner-login",
            "seal-owner-login",
            "demo-service-owner",
            "demo-owner",  # the owner `certrenew demo` writes in its inventory
        }
        # Known to Jira but deactivated: roles refuse them.
        self.inactive_users: set[str] = set()
        self.issues: dict[str, Issue] = {}
        self.links: list[tuple[str, str, str, str]] = []  # (id, type, from, to)
        self.attachments: dict[str, StoredAttachment] = {}
        self.exchanges: list[Exchange] = []
        self.faults: list[Fault] = []
        self.search_lag_seconds = 0.0
        # Rewrites a JSON answer before it is sent: how the tests make Jira say something wrong.
        self.tamper: Callable[[str, str, Any], Any] | None = None
        # Leaves out optional fields on command (`omit_optional`).
        self.optional_fields: OptionalFields | None = None
        self._lock = threading.RLock()
        self._ids = iter(range(10000, 1_000_000))
        self._last_moment = EPOCH
        self._listener = Listener(_handler_for(self), tls, port)
        self.url = f"{self._listener.scheme}://127.0.0.1:{self._listener.port}"

    # -- lifecycle and test controls -----------------------------------------------

    @property
    def _httpd(self) -> ThreadingHTTPServer:
        return self._listener.httpd

    def start(self) -> JiraServer:
        self._listener.start()
        return self

    def stop(self) -> None:
        self._listener.stop()

    def go_down(self) -> None:
        """The machine is gone: connections are refused (open ones cut) until `come_back`."""
        self._listener.stop()

    def come_back(self, tls: ssl.SSLContext | None = None) -> None:
        """Back on the same port, its state kept; `tls` is another certificate to serve."""
        self._listener.come_back(tls)

    def fail(
        self,
        status: int,
        path: str = "",
        method: str | None = None,
        *,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.faults.append(Fault("status", method, path, status, headers or {}, times))

    def drop_connection(
        self, path: str = "", method: str | None = None, *, times: int | None = 1
    ) -> None:
        """Close the connection before the request is handled: nothing happened."""
        self.faults.append(Fault("drop", method, path, times=times))

    def lose_response(
        self,
        path: str = "",
        method: str | None = None,
        *,
        times: int | None = 1,
        then_down: bool = False,
    ) -> None:
        """Handle the request, then close the connection: it happened, the client cannot know.

        `then_down`: an outage starts right after, until `come_back`.
        """
        self.faults.append(Fault("lose_response", method, path, times=times, then_down=then_down))

    def stall(
        self,
        seconds: float,
        path: str = "",
        method: str | None = None,
        *,
        times: int | None = 1,
    ) -> None:
        """Handle the request, then hold the answer `seconds`: slower than a client's timeout,
        it finds nobody listening; the work is done all the same."""
        self.faults.append(Fault("stall", method, path, times=times, seconds=seconds))

    def omit_optional(
        self, description: dict[str, Any], omit: Callable[[str], bool] = lambda _: True
    ) -> OptionalFields:
        """From now on, answer without the optional fields `omit` selects (all by default).

        `description` is Atlassian's OpenAPI description, which says what is optional.
        """
        self.optional_fields = OptionalFields(description, omit)
        return self.optional_fields

    def calls(self, method: str, path: str = "") -> list[Exchange]:
        with self._lock:
            return [
                e
                for e in self.exchanges
                if e.method == method and re.search(path, e.path) is not None
            ]

    def issues_labelled(self, label: str) -> list[Issue]:
        with self._lock:
            return [i for i in self.issues.values() if label in i.fields["labels"]]

    def set_status(self, key: str, status: str) -> None:
        with self._lock:
            self.issues[key].status = status

    def delete_issue(self, key: str) -> None:
        """What a person deleting the ticket by hand does."""
        with self._lock:
            del self.issues[key]

    # -- request handling ---------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def authenticated(self, header: str | None, path: str) -> bool:
        if header is None:
            return path == f"{API}/serverInfo"  # anonymous access, as on a real Jira
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return self.token is not None and value == self.token
        if scheme == "Basic" and self.user is not None:
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return value == expected
        return False

    def handle(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        for pattern_method, pattern, handler in ROUTES:
            if pattern_method != method:
                continue
            match = re.fullmatch(pattern, path)
            if match:
                with self._lock:
                    status, payload, extra = handler(self, match, dict_query(query), headers, body)
                if isinstance(payload, bytes):
                    return status, extra, payload
                if self.tamper is not None:
                    payload = self.tamper(method, path, payload)
                if self.optional_fields is not None:
                    payload = self.optional_fields(method, path, status, payload)
                data = b"" if payload is None else json.dumps(payload).encode()
                return status, {"Content-Type": "application/json;charset=UTF-8", **extra}, data
        return _json(404, error(f"No resource at {path}"))

    # -- helpers for the handlers -----------------------------------------------------

    def next_id(self) -> str:
        return str(next(self._ids))

    def now(self) -> datetime:
        """The wall clock, a millisecond on at least: Jira's order is its timestamps' order."""
        self._last_moment = max(datetime.now(UTC), self._last_moment + timedelta(milliseconds=1))
        return self._last_moment

    def record_change(self, issue: Issue, field_name: str, **change: str) -> None:
        """One changelog entry by the API's user; `from`/`to` as Jira names them (`from_`)."""
        item = {"field": field_name, "fieldtype": "jira"}
        item.update({name.rstrip("_"): value for name, value in change.items()})
        issue.changelog.append(
            {
                "id": self.next_id(),
                "author": self.user_json(),
                "created": jira_time(self.now()),
                "items": [item],
            }
        )

    def user_json(self, name: str = "svc-certrenew") -> dict[str, Any]:
        base = {
            "self": f"{self.url}{API}/user?username={name}",
            "displayName": name,
            "active": name not in self.inactive_users,
            "timeZone": "Europe/Madrid",
        }
        if self.deployment == "Cloud":
            return {
                **base,
                "self": f"{self.url}{API}/user?accountId={name}",
                "accountId": name,
                "accountType": "atlassian",
            }
        return {**base, "name": name, "key": name, "emailAddress": f"{name}@example.org"}

    def status_json(self, name: str) -> dict[str, Any]:
        status_id, category = STATUSES[name]
        cat = STATUS_CATEGORIES[category]
        return {
            "self": f"{self.url}{API}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/status.png",
            "name": name,
            "id": status_id,
            "statusCategory": {"self": f"{self.url}{API}/statuscategory/{cat['id']}", **cat},
        }

    def issuetype_json(self, name: str) -> dict[str, Any]:
        type_id = str(10001 + sorted({t for ts in self.projects.values() for t in ts}).index(name))
        return {
            "self": f"{self.url}{API}/issuetype/{type_id}",
            "id": type_id,
            "name": name,
            "description": name,
            "iconUrl": f"{self.url}/images/icons/{type_id}.png",
            "subtask": False,
        }

    def project_json(self, key: str) -> dict[str, Any]:
        project_id = str(10100 + sorted(self.projects).index(key))
        return {
            "self": f"{self.url}{API}/project/{project_id}",
            "id": project_id,
            "key": key,
            "name": f"Project {key}",
            "projectTypeKey": "software",
            "issueTypes": [self.issuetype_json(t) for t in self.projects[key]],
            "components": [self.component_json(key, c) for c in self.components],
        }

    def component_json(self, project: str, name: str) -> dict[str, Any]:
        component_id = str(10200 + self.components.index(name))
        return {
            "self": f"{self.url}{API}/component/{component_id}",
            "id": component_id,
            "name": name,
        }

    def attachment_json(
        self, stored: StoredAttachment, *, metadata: bool = False
    ) -> dict[str, Any]:
        if self.deployment == "Cloud":
            content = f"{self.url}{API}/attachment/content/{stored.id}"
        else:
            content = f"{self.url}/secure/attachment/{stored.id}/{quote(stored.filename)}"
        return {
            "self": f"{self.url}{API}/attachment/{stored.id}",
            # AttachmentMetadata has an integer id, the issue's Attachment a string one.
            "id": int(stored.id) if metadata else stored.id,
            "filename": stored.filename,
            "author": self.user_json(),
            "created": jira_time(stored.created),
            "size": len(stored.data),
            "mimeType": stored.mime_type,
            "content": content,
        }

    def linked_issue_json(self, key: str) -> dict[str, Any]:
        issue = self.issues[key]
        return {
            "id": issue.id,
            "key": key,
            "self": f"{self.url}{API}/issue/{issue.id}",
            "fields": {
                "summary": issue.fields["summary"],
                "status": self.status_json(issue.status),
                "issuetype": self.issuetype_json(issue.fields["issuetype"]),
            },
        }

    def issue_json(
        self, issue: Issue, wanted: set[str] | None, expand: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        links = []
        for link_id, type_name, source, target in self.links:
            if issue.key not in (source, target):
                continue
            other, side = (
                (target, "outwardIssue") if source == issue.key else (source, "inwardIssue")
            )
            if other in self.issues:
                links.append(
                    {
                        "id": link_id,
                        "self": f"{self.url}{API}/issueLink/{link_id}",
                        "type": self.link_type_json(type_name),
                        side: self.linked_issue_json(other),
                    }
                )
        fields = {
            **issue.fields,
            "project": {
                k: v
                for k, v in self.project_json(issue.project).items()
                if k in ("self", "id", "key", "name", "projectTypeKey")
            },
            "issuetype": self.issuetype_json(issue.fields["issuetype"]),
            "status": self.status_json(issue.status),
            "created": jira_time(issue.created),
            "updated": jira_time(issue.created),
            "attachment": [self.attachment_json(self.attachments[a]) for a in issue.attachments],
            "issuelinks": links,
            "comment": {
                "comments": issue.comments,
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
        }
        if wanted is not None and "*all" not in wanted:
            fields = {k: v for k, v in fields.items() if k in wanted}
        found = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{self.url}{API}/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }
        if "changelog" in expand:
            total = len(issue.changelog)
            found["changelog"] = {
                "startAt": 0,
                "maxResults": total,
                "total": total,
                "histories": issue.changelog,
            }
        return found

    def link_type_json(self, name: str) -> dict[str, Any]:
        link_id = str(10000 + self.link_types.index(name))
        inward, outward = (
            ("relates to", "relates to")
            if name == "Relates"
            else (f"is {name.lower()} by", name.lower())
        )
        return {
            "id": link_id,
            "name": name,
            "inward": inward,
            "outward": outward,
            "self": f"{self.url}{API}/issueLinkType/{link_id}",
        }

    def transitions_for(self, issue: Issue) -> list[dict[str, Any]]:
        available = [
            ("11", "To Do", "To Do"),
            ("21", "Start Progress", "In Progress"),
            ("31", self.done_transition, "Done"),
        ]
        return [
            {
                "id": tid,
                "name": name,
                "to": self.status_json(target),
                "hasScreen": False,
                "isGlobal": True,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            for tid, name, target in available
            if target != issue.status
        ]

    def search(self, jql: str) -> list[Issue]:
        conditions, order = parse_jql(jql)
        if not conditions and self.deployment == "Cloud":
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        indexed_until = datetime.now(UTC) - timedelta(seconds=self.search_lag_seconds)
        found = [
            i
            for i in self.issues.values()
            if i.created <= indexed_until
            and all(_matches(i, name, value) for name, value in conditions)
        ]
        if order is not None:
            name, descending = order
            found.sort(
                key=(lambda i: i.created)
                if name == "created"
                else (lambda i: (i.project, int(i.key.split("-")[1]))),
                reverse=descending,
            )
        return found


# -- JQL: the subset the product sends, parsed honestly -------------------------------------

JQL_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>!=|=)'
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.-]*))"
)
JQL_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t", " ": " "}
JQL_FIELDS = {"labels", "project", "key", "issuetype"}


def _tokens(jql: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(jql.rstrip()):
        match = JQL_TOKEN.match(jql, pos)
        if match is None:
            raise JqlError(
                f"Error in the JQL Query: the character '{jql[pos:].strip()[0]}' "
                f"is a reserved JQL character (at {pos})"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    out, chars = [], iter(literal[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars)
            if escaped not in JQL_ESCAPES:
                raise JqlError(
                    f"Error in the JQL Query: '\\{escaped}' is an illegal JQL escape sequence"
                )
            out.append(JQL_ESCAPES[escaped])
        else:
            out.append(char)
    return "".join(out)


def parse_jql(jql: str) -> tuple[list[tuple[str, str]], tuple[str, bool] | None]:
    """`field = value [AND ...] [ORDER BY created|key [ASC|DESC]]`; anything else is a 400."""
    tokens = _tokens(jql)
    conditions: list[tuple[str, str]] = []
    order: tuple[str, bool] | None = None
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "word" and text.upper() == "ORDER":
            rest = tokens[i + 1 :]
            if len(rest) < 2 or rest[0][1].upper() != "BY" or rest[1][1] not in ("created", "key"):
                raise JqlError("Error in the JQL Query: expecting a field after 'order by'")
            direction = rest[2][1].upper() if len(rest) > 2 else "ASC"
            if direction not in ("ASC", "DESC") or len(rest) > 3:
                raise JqlError(f"Error in the JQL Query: unexpected '{direction}'")
            order = (rest[1][1], direction == "DESC")
            break
        if conditions:
            if text.upper() != "AND":
                raise JqlError(
                    f"Error in the JQL Query: expecting 'AND' or 'ORDER BY' but got '{text}'"
                )
            i += 1
            kind, text = tokens[i] if i < len(tokens) else ("", "")
        if kind != "word":
            raise JqlError(f"Error in the JQL Query: expecting a field name but got '{text}'")
        if text not in JQL_FIELDS:
            raise JqlError(
                f"Field '{text}' does not exist or you do not have permission to view it."
            )
        if i + 2 >= len(tokens) or tokens[i + 1] != ("op", "="):
            raise JqlError(f"Error in the JQL Query: expecting '=' and a value after '{text}'")
        value_kind, value = tokens[i + 2]
        conditions.append((text, _unquote(value) if value_kind == "string" else value))
        i += 3
    return conditions, order


def _matches(issue: Issue, name: str, value: str) -> bool:
    if name == "labels":
        return value in issue.fields["labels"]
    if name == "project":
        return issue.project == value
    if name == "issuetype":
        return issue.fields["issuetype"] == value
    return issue.key == value


# -- handlers -------------------------------------------------------------------------------

Result = tuple[int, Any, dict[str, str]]


def error(*messages: str, **errors: str) -> dict[str, Any]:
    return {"errorMessages": list(messages), "errors": errors}


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json;charset=UTF-8"}, json.dumps(payload).encode()


def dict_query(query: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in query:
        out.setdefault(name, []).append(value)
    return out


def _one(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    return query.get(name, [default])[0]


def _wanted_fields(query: dict[str, list[str]]) -> set[str] | None:
    values = query.get("fields")
    if not values:
        return None
    return {f.strip() for v in values for f in v.split(",") if f.strip()}


def _no_issue() -> Result:
    return 404, error("Issue does not exist or you do not have permission to see it."), {}


def server_info(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    cloud = s.deployment == "Cloud"
    version = [1001, 0, 0] if cloud else [9, 12, 15]
    return (
        200,
        {
            "baseUrl": s.url,
            "version": ".".join(map(str, version)),
            "versionNumbers": version,
            "deploymentType": s.deployment,
            "buildNumber": 100292 if cloud else 9120015,
            "buildDate": jira_time(EPOCH - timedelta(days=30)),
            "serverTime": jira_time(datetime.now(UTC)),
            "scmInfo": "0123abcd",
            "serverTitle": "Jira",
        },
        {},
    )


def myself(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    return 200, s.user_json(), {}


def user(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    """GET user: by `username` on Server/DC, by `accountId` on Cloud."""
    name = _one(q, "accountId" if s.deployment == "Cloud" else "username")
    if not name or name not in s.users:
        return 404, error(f"The user named '{name}' does not exist"), {}
    return 200, s.user_json(name), {}


def projects(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    return 200, [s.project_json(k) for k in sorted(s.projects)], {}


def project(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    key = m["key"]
    if key not in s.projects:
        return 404, error(f"No project could be found with key '{key}'."), {}
    return 200, s.project_json(key), {}


def issue_types(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    names = sorted({t for ts in s.projects.values() for t in ts})
    return 200, [s.issuetype_json(n) for n in names], {}


def fields(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    return (
        200,
        [
            {
                "id": fid,
                "key": fid,
                "name": name,
                "custom": fid.startswith("customfield_"),
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [fid],
                "schema": {"type": kind, "system": fid},
            }
            for fid, name, kind in FIELDS
        ],
        {},
    )


def create_issue(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    given = json.loads(b).get("fields", {})
    problems: dict[str, str] = {}
    project_key: Any = (given.get("project") or {}).get("key")  # as the request sent it
    if project_key not in s.projects:
        problems["project"] = "valid project is required"
    type_name = (given.get("issuetype") or {}).get("name")
    if project_key in s.projects and type_name not in s.projects[project_key]:
        problems["issuetype"] = "valid issue type is required"
    if not given.get("summary"):
        problems["summary"] = "You must specify a summary of the issue."
    labels = given.get("labels", [])
    if any(not label or any(c.isspace() for c in label) for label in labels):
        problems["labels"] = "The label contains spaces which is invalid."
    for component in given.get("components", []):
        if component.get("name") not in s.components:
            problems["components"] = f"Component name '{component.get('name')}' is not valid"
    assignee = given.get("assignee")
    if assignee is not None:
        who_key = "accountId" if s.deployment == "Cloud" else "name"
        if assignee.get(who_key) not in s.users:
            problems["assignee"] = f"User '{assignee}' does not exist."
    known = {fid for fid, _, _ in FIELDS}
    for name in given:
        if name not in known:
            problems[name] = (
                f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            )
    if problems:
        return 400, error(**problems), {}
    number = 1 + sum(1 for i in s.issues.values() if i.project == project_key)
    while f"{project_key}-{number}" in s.issues:
        number += 1
    issue_id = s.next_id()
    key = f"{project_key}-{number}"
    stored = {name: value for name, value in given.items() if name not in ("project",)}
    stored["issuetype"] = type_name
    stored.setdefault("labels", [])
    stored["assignee"] = (
        s.user_json(assignee.get("accountId") or assignee.get("name")) if (assignee) else None
    )
    stored["components"] = [
        s.component_json(project_key, c["name"]) for c in given.get("components", [])
    ]
    s.issues[key] = Issue(issue_id, key, project_key, stored, s.now())
    return 201, {"id": issue_id, "key": key, "self": f"{s.url}{API}/issue/{issue_id}"}, {}


def get_issue(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    issue = s.issues.get(m["key"]) or next((i for i in s.issues.values() if i.id == m["key"]), None)
    if issue is None:
        return _no_issue()
    expand = frozenset(e.strip() for v in q.get("expand", []) for e in v.split(","))
    return 200, s.issue_json(issue, _wanted_fields(q), expand), {}


def link_types(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    return 200, {"issueLinkTypes": [s.link_type_json(n) for n in s.link_types]}, {}


def create_link(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    body = json.loads(b)
    type_name = (body.get("type") or {}).get("name")
    if type_name not in s.link_types:
        return 404, error(f"No issue link type with name '{type_name}' found."), {}
    source = (body.get("outwardIssue") or {}).get("key")  # "from (outward) issue"
    target = (body.get("inwardIssue") or {}).get("key")
    if source not in s.issues or target not in s.issues:
        return _no_issue()
    # Like Jira: a duplicate link answers "created" and changes nothing.
    if not any(link[1:] == (type_name, source, target) for link in s.links):
        s.links.append((s.next_id(), type_name, source, target))
        kind = s.link_type_json(type_name)
        s.record_change(
            s.issues[source], "Link", to=target, toString=f"This issue {kind['outward']} {target}"
        )
        s.record_change(
            s.issues[target], "Link", to=source, toString=f"This issue {kind['inward']} {source}"
        )
    return 201, None, {}


def list_comments(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    issue = s.issues.get(m["key"])
    if issue is None:
        return _no_issue()
    start = int(_one(q, "startAt", "0") or 0)
    size = min(int(_one(q, "maxResults", str(s.page_size)) or s.page_size), s.page_size)
    return (
        200,
        {
            "startAt": start,
            "maxResults": size,
            "total": len(issue.comments),
            "comments": issue.comments[start : start + size],
        },
        {},
    )


def add_comment(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    issue = s.issues.get(m["key"])
    if issue is None:
        return _no_issue()
    body = json.loads(b).get("body")
    if not isinstance(body, str) or not body.strip():
        return 400, error(comment="Comment body can not be empty!"), {}
    comment_id = s.next_id()
    now = jira_time(s.now())
    comment: dict[str, Any] = {
        "self": f"{s.url}{API}/issue/{issue.id}/comment/{comment_id}",
        "id": comment_id,
        "author": s.user_json(),
        "body": body,
        "updateAuthor": s.user_json(),
        "created": now,
        "updated": now,
    }
    if s.deployment == "Cloud":
        comment["jsdPublic"] = True
    issue.comments.append(comment)
    return 201, comment, {}


def add_attachment(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    if h.get("x-atlassian-token") != "no-check":
        return 403, {"message": "XSRF check failed"}, {}
    issue = s.issues.get(m["key"])
    if issue is None:
        return _no_issue()
    parts = parse_multipart(h.get("content-type", ""), b)
    if [name for name, _, _ in parts] != ["file"] or not (filename := parts[0][1]):
        return 400, error("Expected one multipart part named 'file' with a filename"), {}
    data = parts[0][2]
    stored = StoredAttachment(
        s.next_id(), issue.key, filename, data, "application/octet-stream", s.now()
    )
    s.attachments[stored.id] = stored
    issue.attachments.append(stored.id)
    s.record_change(issue, "Attachment", to=stored.id, toString=filename)
    return 200, [s.attachment_json(stored)], {}


def attachment_meta(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    stored = s.attachments.get(m["id"])
    if stored is None:
        return 404, error(f"The attachment with id '{m['id']}' does not exist"), {}
    return 200, s.attachment_json(stored, metadata=True), {}


def attachment_content(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    stored = s.attachments.get(m["id"])
    if stored is None:
        return 404, error(f"The attachment with id '{m['id']}' does not exist"), {}
    return 200, stored.data, {"Content-Type": stored.mime_type}


def delete_attachment(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    stored = s.attachments.pop(m["id"], None)
    if stored is None:
        return 404, error(f"The attachment with id '{m['id']}' does not exist"), {}
    if stored.issue in s.issues:
        s.issues[stored.issue].attachments.remove(stored.id)
        s.record_change(
            s.issues[stored.issue], "Attachment", from_=stored.id, fromString=stored.filename
        )
    return 204, None, {}


def get_transitions(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    issue = s.issues.get(m["key"])
    if issue is None:
        return _no_issue()
    return 200, {"expand": "transitions", "transitions": s.transitions_for(issue)}, {}


def do_transition(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    issue = s.issues.get(m["key"])
    if issue is None:
        return _no_issue()
    body = json.loads(b)
    wanted = str((body.get("transition") or {}).get("id"))
    chosen = [t for t in s.transitions_for(issue) if t["id"] == wanted]
    if not chosen:
        return 400, error(f"Transition id '{wanted}' is not valid for this issue."), {}
    given = body.get("fields") or {}
    if chosen[0]["to"]["name"] == "Done":
        missing = {f: f"{f.capitalize()} is required." for f in s.done_requires if f not in given}
        if missing:
            return 400, error(**missing), {}
    issue.fields.update(given)
    issue.status = chosen[0]["to"]["name"]
    return 204, None, {}


def _page_size(s: JiraServer, q: dict) -> int:
    return min(int(_one(q, "maxResults", "50") or 50), s.page_size)


def search(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    if s.deployment == "Cloud":
        return (
            410,
            error(
                "The requested API has been removed. Please migrate to the "
                "/rest/api/3/search/jql API."
            ),
            {},
        )
    try:
        found = s.search(_one(q, "jql", "") or "")
    except JqlError as exc:
        return 400, error(str(exc)), {}
    size, start = _page_size(s, q), int(_one(q, "startAt", "0") or 0)
    wanted = _wanted_fields(q)
    return (
        200,
        {
            "expand": "names,schema",
            "startAt": start,
            "maxResults": size,
            "total": len(found),
            "issues": [s.issue_json(i, wanted) for i in found[start : start + size]],
        },
        {},
    )


def search_jql(s: JiraServer, m: re.Match, q: dict, h: dict, b: bytes) -> Result:
    if s.deployment != "Cloud":
        return 404, error("null for uri: /rest/api/2/search/jql"), {}
    try:
        found = s.search(_one(q, "jql", "") or "")
    except JqlError as exc:
        return 400, error(str(exc)), {}
    size, start = _page_size(s, q), int(_one(q, "nextPageToken", "0") or 0)
    wanted = _wanted_fields(q) or {"id"}
    chunk = found[start : start + size]
    result: dict[str, Any] = {
        "issues": [s.issue_json(i, wanted) for i in chunk],
        "isLast": start + size >= len(found),
    }
    if not result["isLast"]:
        result["nextPageToken"] = str(start + size)
    return 200, result, {}


ROUTES: list[tuple[str, str, Callable[..., Result]]] = [
    ("GET", f"{API}/serverInfo", server_info),
    ("GET", f"{API}/myself", myself),
    ("GET", f"{API}/user", user),
    ("GET", f"{API}/project", projects),
    ("GET", f"{API}/project/(?P<key>[^/]+)", project),
    ("GET", f"{API}/issuetype", issue_types),
    ("GET", f"{API}/field", fields),
    ("POST", f"{API}/issue", create_issue),
    ("GET", f"{API}/issue/(?P<key>[^/]+)", get_issue),
    ("GET", f"{API}/issueLinkType", link_types),
    ("POST", f"{API}/issueLink", create_link),
    ("GET", f"{API}/issue/(?P<key>[^/]+)/comment", list_comments),
    ("POST", f"{API}/issue/(?P<key>[^/]+)/comment", add_comment),
    ("POST", f"{API}/issue/(?P<key>[^/]+)/attachments", add_attachment),
    ("GET", f"{API}/attachment/(?P<id>\\d+)", attachment_meta),
    ("DELETE", f"{API}/attachment/(?P<id>\\d+)", delete_attachment),
    ("GET", f"{API}/attachment/content/(?P<id>\\d+)", attachment_content),
    ("GET", "/secure/attachment/(?P<id>\\d+)/[^/]+", attachment_content),
    ("GET", f"{API}/issue/(?P<key>[^/]+)/transitions", get_transitions),
    ("POST", f"{API}/issue/(?P<key>[^/]+)/transitions", do_transition),
    ("GET", f"{API}/search", search),
    ("GET", f"{API}/search/jql", search_jql),
]


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """(part name, filename, bytes) of a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        return []
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        # decode=True gives bytes, or None for a multipart part; typeshed also allows a Message.
        payload = cast(bytes | None, part.get_payload(decode=True))
        parts.append((str(name), part.get_filename(), payload or b""))
    return parts


def _handler_for(server: JiraServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write: no delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            exchange = Exchange(
                self.command,
                split.path,
                parse_qsl(split.query, keep_blank_values=True),
                headers,
                body,
            )
            with server._lock:
                server.exchanges.append(exchange)
            fault = server._take_fault(self.command, split.path)
            if fault is not None and fault.kind == "drop":
                exchange.fault = "drop"
                self.close_connection = True
                return
            if fault is not None and fault.kind == "status":
                exchange.fault = f"status {fault.status}"
                status, extra, data = _json(fault.status, error(f"Injected failure {fault.status}"))
                extra.update(fault.headers)
            elif not server.authenticated(headers.get("authorization"), split.path):
                status, extra, data = _json(
                    401,
                    error(
                        "You are not authenticated. Authentication required to perform this "
                        "operation."
                    ),
                )
            else:
                status, extra, data = server.handle(
                    self.command, split.path, exchange.query, headers, body
                )
            exchange.status, exchange.response_headers, exchange.response_body = (
                status,
                extra,
                data,
            )
            if fault is not None and fault.kind == "lose_response":
                exchange.fault = "lose_response"  # handled and recorded, never sent
                self.close_connection = True
                if fault.then_down:
                    server.go_down()
                return
            if fault is not None and fault.kind == "stall":
                exchange.fault = "stall"  # handled and recorded, answered too late
                time.sleep(fault.seconds)
                self.close_connection = True
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A Jira-compatible server on 127.0.0.1")
    parser.add_argument("--cloud", action="store_true", help="answer as Jira Cloud")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--search-lag", type=float, default=0.0, help="seconds before a new issue is searchable"
    )
    parser.add_argument(
        "--lose-create-answers", type=int, default=0, help="the first N creates lose their answer"
    )
    args = parser.parse_args()
    server = JiraServer("Cloud" if args.cloud else "Server", port=args.port)
    server.search_lag_seconds = args.search_lag
    if args.lose_create_answers:
        server.lose_response(r"/issue$", "POST", times=args.lose_create_answers)
    print(
        f"CERTRENEW_TRACKER=jira CERTRENEW_JIRA__URL={server.url} "
        f"CERTRENEW_JIRA__TOKEN={server.token}",
        flush=True,
    )
    server.start()
    try:
        server._listener.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
