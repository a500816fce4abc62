"""Exactly once while Jira's search lags behind its writes.

The test server's search shows an issue only `search_lag_seconds` after it was
created (reading it by key works at once), and its first creates can lose their
answer. The tracker's bound (jira.search_lag_seconds, 60 s by default) is
scaled down here (lag 3 s, bound 5 s) to keep the suite fast: the property
holds for any lag below the bound. These tests wait in real time, since the
lag is the server's wall clock; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from certrenew.adapters.tracker import NewTicket, ensure_ticket
from certrenew.adapters.tracker.create_intents import CreateIntents
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.config import JiraSettings
from certrenew.errors import ServiceUnavailable
from certrenew.lab.jira_server import JiraServer

BOTH = pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
LAG = 3.0
BOUND = 5.0


def tracker(server: JiraServer, intents: Path | None = None, **changes: Any) -> JiraTracker:
    settings = JiraSettings(
        url=server.url,
        token=SecretStr(server.token or ""),
        timeout_seconds=2,
        search_lag_seconds=BOUND,
        retry_attempts=3,
        retry_base_delay_seconds=0.01,
        retry_max_delay_seconds=0.05,
    )
    return JiraTracker(settings.model_copy(update=changes), intents=CreateIntents(intents))


def ticket(kind: str) -> NewTicket:
    project = {"csr": "SIS", "owner": "ST"}[kind]
    return NewTicket(project, f"{kind} ticket", "...", f"certrenew-r1-{kind}", ("certrenew",))


def empty_searches(server: JiraServer) -> int:
    """Searches answered with no issue: proof that the lag was in force."""
    answers = [json.loads(e.response_body) for e in server.calls("GET", r"/search") if e.status]
    return sum(1 for answer in answers if not answer.get("issues"))


@BOTH
def test_first_two_creates_lose_their_answer_while_search_lags(jira_server: JiraServer) -> None:
    jira_server.search_lag_seconds = LAG
    jira_server.lose_response(r"/issue$", "POST", times=2)
    jira = tracker(jira_server)
    csr = ensure_ticket(jira, ticket("csr"))
    owner = ensure_ticket(jira, ticket("owner"))
    assert [i.key for i in jira_server.issues_labelled("certrenew-r1-csr")] == [csr.key]
    assert [i.key for i in jira_server.issues_labelled("certrenew-r1-owner")] == [owner.key]
    creates = jira_server.calls("POST", r"/issue$")
    assert [c.fault for c in creates] == ["lose_response", "lose_response"]
    assert empty_searches(jira_server) >= 4  # each label: before creating, then while lagging


def test_a_rerun_after_a_crash_finds_the_ticket_its_lost_create_made(
    jira_server: JiraServer, tmp_path: Path
) -> None:
    """The first run gives up (as a killed one would stop); the next, another tracker, waits."""
    jira_server.search_lag_seconds = LAG
    jira_server.lose_response(r"/issue$", "POST")
    with pytest.raises(ServiceUnavailable):
        ensure_ticket(tracker(jira_server, tmp_path, retry_attempts=0), ticket("csr"))
    found = ensure_ticket(tracker(jira_server, tmp_path), ticket("csr"))
    assert [i.key for i in jira_server.issues_labelled("certrenew-r1-csr")] == [found.key]
    assert len(jira_server.calls("POST", r"/issue$")) == 1


def test_a_rerun_after_an_answered_create_reads_the_ticket_by_its_key(
    jira_server: JiraServer, tmp_path: Path
) -> None:
    """Crash after Jira answered but before the step's result was kept: no wait, no search."""
    jira_server.search_lag_seconds = 3600
    made = ensure_ticket(tracker(jira_server, tmp_path), ticket("csr"))
    searches = len(jira_server.calls("GET", r"/search"))
    again = ensure_ticket(tracker(jira_server, tmp_path), ticket("csr"))
    assert again.key == made.key and len(jira_server.issues) == 1
    assert len(jira_server.calls("GET", r"/search")) == searches + 1  # ensure_ticket's own
    assert jira_server.calls("GET", rf"/issue/{made.key}$")


def test_a_create_jira_refused_is_sent_again_without_waiting_for_the_search(
    jira_server: JiraServer,
) -> None:
    jira_server.search_lag_seconds = 3600
    jira_server.fail(503, r"/issue$", "POST")
    made = ensure_ticket(tracker(jira_server), ticket("csr"))
    assert [e.status for e in jira_server.calls("POST", r"/issue$")] == [503, 201]
    assert len(jira_server.calls("GET", r"/search")) == 1  # ensure_ticket's own: no polling
    assert jira_server.issues_labelled("certrenew-r1-csr")[0].key == made.key


def test_a_lag_longer_than_the_bound_is_said_on_the_ticket_opened_again(
    jira_server: JiraServer, caplog: pytest.LogCaptureFixture
) -> None:
    jira_server.search_lag_seconds = 30
    jira_server.lose_response(r"/issue$", "POST")
    with caplog.at_level(logging.WARNING):
        again = ensure_ticket(tracker(jira_server, search_lag_seconds=1), ticket("csr"))
    [first, second] = jira_server.issues_labelled("certrenew-r1-csr")
    assert second.key == again.key
    [comment] = jira_server.issues[again.key].comments
    said = comment["body"]
    assert "opened this ticket again" in said and "certrenew-r1-csr" in said
    assert f"close it as a duplicate of {again.key}" in said
    assert "jira.search_lag_seconds" in said
    assert said in caplog.text
    assert first.key != again.key
