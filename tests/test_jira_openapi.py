"""The OpenAPI check itself: it passes what real Jira says and catches what it would not.

The `jira_server` fixture runs this check on every exchange of every test; the
negative controls here prove that a wrong shape would fail those tests, and that
each tolerance for a known Jira quirk stays as narrow as documented.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.config import JiraSettings
from certrenew.lab.jira_server import Exchange, JiraServer
from tests.jira_openapi import JiraSpec


def exchange(
    method: str,
    path: str,
    status: int,
    answer: Any = None,
    *,
    body: Any = None,
    raw_answer: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Exchange:
    return Exchange(
        method,
        path,
        [],
        {"content-type": "application/json", **(headers or {})},
        json.dumps(body).encode() if body is not None else b"",
        status,
        {"Content-Type": "application/json"},
        raw_answer if raw_answer is not None else json.dumps(answer).encode(),
    )


SERVER_INFO = {"versionNumbers": [9, 12, 15], "deploymentType": "Server"}
LINK = {
    "type": {"name": "Relates"},
    "inwardIssue": {"key": "SIS-2"},
    "outwardIssue": {"key": "SIS-1"},
}


def test_a_right_answer_passes(jira_spec: JiraSpec) -> None:
    assert jira_spec.problems(exchange("GET", "/rest/api/2/serverInfo", 200, SERVER_INFO)) == []


@pytest.mark.parametrize(
    ("wrong", "expected"),
    [
        (exchange("GET", "/rest/api/2/serverInfo", 200, {"versionNumbers": "9.12"}), "array"),
        (exchange("GET", "/rest/api/2/search", 200, {"total": "3", "issues": []}), "integer"),
        (exchange("GET", "/rest/api/2/myself", 202, {"name": "svc"}), "not declared"),
        (exchange("GET", "/rest/api/2/nosuchthing", 200, {}), "no such operation"),
        (
            exchange("GET", "/rest/api/2/issue/SIS-1/comment", 200, {"comments": [{"id": 7}]}),
            "string",
        ),
        (
            exchange("GET", "/rest/api/2/myself", 503, {"errorMessages": "down"}),
            "error body",
        ),
        (
            exchange("POST", "/rest/api/2/issueLink", 201, None, body={"type": {"name": "R"}}),
            "required",
        ),
    ],
    ids=[
        "wrong-type",
        "wrong-total",
        "undeclared-status",
        "unknown-path",
        "comment-id",
        "error-shape",
        "missing-required",
    ],
)
def test_a_wrong_shape_is_caught(jira_spec: JiraSpec, wrong: Exchange, expected: str) -> None:
    problems = jira_spec.problems(wrong)
    assert problems and expected in " ".join(problems), problems


def test_jira_timestamps_pass_but_other_text_does_not(jira_spec: JiraSpec) -> None:
    jira_form = exchange(
        "GET",
        "/rest/api/2/serverInfo",
        200,
        {**SERVER_INFO, "buildDate": "2026-11-23T10:15:00.000+0000"},
    )
    not_a_time = exchange(
        "GET", "/rest/api/2/serverInfo", 200, {**SERVER_INFO, "buildDate": "ahir"}
    )
    assert jira_spec.problems(jira_form) == []
    assert "date-time" in " ".join(jira_spec.problems(not_a_time))


def test_empty_bodies_are_tolerated_only_where_jira_sends_them(jira_spec: JiraSpec) -> None:
    link = exchange("POST", "/rest/api/2/issueLink", 201, body=LINK, raw_answer=b"")
    transition = exchange(
        "POST",
        "/rest/api/2/issue/SIS-1/transitions",
        204,
        body={"transition": {"id": 31}},
        raw_answer=b"",
    )
    empty_info = exchange("GET", "/rest/api/2/serverInfo", 200, raw_answer=b"")
    assert jira_spec.problems(link) == []
    assert jira_spec.problems(transition) == []
    assert jira_spec.problems(empty_info) != []


def test_null_comment_is_tolerated_on_links_only_as_null(jira_spec: JiraSpec) -> None:
    with_null = exchange(
        "POST", "/rest/api/2/issueLink", 201, body={**LINK, "comment": None}, raw_answer=b""
    )
    with_text = exchange(
        "POST", "/rest/api/2/issueLink", 201, body={**LINK, "comment": "hola"}, raw_answer=b""
    )
    assert jira_spec.problems(with_null) == []
    assert jira_spec.problems(with_text) != []


def test_multipart_upload_is_checked_by_hand(jira_spec: JiraSpec) -> None:
    boundary = "b0undary"

    def upload(name: str, token: str | None) -> Exchange:
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="a.csr"'
            f"\r\nContent-Type: application/octet-stream\r\n\r\ncsr\r\n--{boundary}--\r\n"
        ).encode()
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        if token:
            headers["x-atlassian-token"] = token
        answered = exchange("POST", "/rest/api/2/issue/SIS-1/attachments", 200, [], headers=headers)
        answered.request_body = body
        return answered

    assert jira_spec.problems(upload("file", "no-check")) == []
    assert "X-Atlassian-Token" in " ".join(jira_spec.problems(upload("file", None)))
    assert "want one 'file'" in " ".join(jira_spec.problems(upload("attachment", "no-check")))


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_a_wrong_answer_from_the_server_itself_is_caught(
    jira_spec: JiraSpec, deployment: str
) -> None:
    """The same check the fixture runs, on traffic where the server answers one shape wrong."""
    server = JiraServer(deployment)

    def comment_id_as_number(method: str, path: str, payload: Any) -> Any:
        if method == "POST" and path.endswith("/comment"):
            payload["id"] = int(payload["id"])
        return payload

    server.tamper = comment_id_as_number
    server.start()
    try:
        tracker = JiraTracker(JiraSettings(url=server.url, token=SecretStr(server.token or "")))
        key = tracker.create_ticket(NewTicket("SIS", "CSR", "CSR", "certrenew-spec")).key
        tracker.add_comment(key, "CSR rebut.")
    finally:
        server.stop()
    flagged = {e.path for e in server.exchanges if jira_spec.problems(e)}
    assert flagged == {f"/rest/api/2/issue/{key}/comment"}


@pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
def test_the_whole_chain_is_checked(
    jira_spec: JiraSpec, jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    """Every kind of call the tracker makes goes through the check (and passes it)."""
    csr = jira_tracker.create_ticket(NewTicket("SIS", "CSR", "CSR", "certrenew-chain-csr"))
    owner = jira_tracker.create_ticket(NewTicket("ST", "CA?", "Quina CA?", "certrenew-chain-st"))
    jira_tracker.find_tickets("certrenew-chain-csr")
    jira_tracker.link_tickets(csr.key, owner.key, "Relates")
    jira_tracker.add_comment(csr.key, "CSR rebut.")
    jira_tracker.comments(csr.key)
    added = jira_tracker.add_attachment(csr.key, "seu.key", b"key bytes")
    jira_tracker.download_attachment(csr.key, added)
    jira_tracker.delete_attachment(csr.key, added)
    jira_tracker.close_ticket(csr.key)
    jira_tracker.link_type_names()
    jira_tracker.project_issue_types("SIS")
    assert [p for e in jira_server.exchanges for p in jira_spec.problems(e)] == []
    kinds = {
        (e.method, e.path.split("/")[4] if e.path.startswith("/rest") else "secure")
        for e in jira_server.exchanges
    }
    assert {
        ("GET", "serverInfo"),
        ("GET", "myself"),
        ("POST", "issue"),
        ("GET", "issue"),
        ("POST", "issueLink"),
        ("GET", "issueLinkType"),
        ("GET", "attachment"),
        ("DELETE", "attachment"),
        ("GET", "project"),
        ("GET", "field"),
    } <= kinds
    search = "/search/jql$" if jira_server.deployment == "Cloud" else "/search$"
    assert jira_server.calls("GET", search)


def test_the_fixture_fails_a_test_whose_answers_break_the_spec(pytester: pytest.Pytester) -> None:
    """The check at teardown is not decorative: one wrong answer turns a passing test red."""
    pytester.makeconftest('pytest_plugins = ["tests.fixtures_jira"]')
    pytester.makepyfile(
        """
        from certrenew.adapters.tracker import NewTicket

        def test_right(jira_tracker):
            jira_tracker.create_ticket(NewTicket("SIS", "CSR", "CSR", "certrenew-right"))

        def test_wrong(jira_server, jira_tracker):
            def comment_id_as_number(method, path, payload):
                if method == "POST" and path.endswith("/comment"):
                    payload["id"] = int(payload["id"])
                return payload

            jira_server.tamper = comment_id_as_number
            key = jira_tracker.create_ticket(NewTicket("SIS", "CSR", "CSR", "certrenew-x")).key
            jira_tracker.add_comment(key, "CSR rebut.")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_wrong*", "*POST /rest/api/2/issue/SIS-1/comment*"]
    )
