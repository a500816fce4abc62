"""`certrenew check jira` against the test server, configured through the environment."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.cli import app
from certrenew.config import JiraSettings
from certrenew.errors import ConfigError
from certrenew.lab.jira_server import JiraServer


@pytest.fixture
def run(jira_env: JiraServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CERTRENEW_CONFIG", raising=False)

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["check", "jira", *args])
        return result.exit_code, result.output

    return invoke


def open_ticket(tracker: JiraTracker) -> str:
    return tracker.create_ticket(NewTicket("SIS", "CSR", "CSR", "certrenew-check")).key


def line(output: str, what: str) -> str:
    found = [text for text in output.splitlines() if what in text]
    assert found, f"no line about {what!r} in:\n{output}"
    return found[0]


@pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
def test_everything_present(run, jira_tracker: JiraTracker, jira_server: JiraServer) -> None:
    key = open_ticket(jira_tracker)
    code, output = run("--issue", key)
    assert code == 0, output
    for what in (
        "reachable",
        "credentials",
        "project SIS",
        "project ST",
        "issue type 'Task' in SIS",
        "issue type 'Task' in ST",
        "link type 'Relates'",
        "transition 'Done'",
    ):
        assert line(output, what).startswith("[    ok     ]"), output
    assert f"Jira {jira_server.deployment}" in line(output, "reachable")
    assert "tickets.csr_project, tickets.install_project" in line(output, "project SIS")


def test_missing_pieces_are_named_with_their_settings(
    run, jira_tracker: JiraTracker, jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = open_ticket(jira_tracker)
    monkeypatch.setenv("CERTRENEW_TICKETS__OWNER_PROJECT", "NOPE")
    monkeypatch.setenv("CERTRENEW_TICKETS__LINK_TYPE", "Duplicate")
    jira_server.projects["SIS"] = ["Bug", "Task"]
    jira_server.done_transition = "Resolve"
    code, output = run("--issue", key)
    assert code == 1
    assert "MISSING" in line(output, "project NOPE") and "tickets.owner_project" in output
    assert "Relates, Blocks" in line(output, "link type 'Duplicate'")
    assert "MISSING" in line(output, "link type 'Duplicate'")
    transition = line(output, "transition 'Done'")
    assert "MISSING" in transition and "Resolve" in transition
    assert "jira.done_transition" in transition


def test_missing_issue_type(run, jira_server: JiraServer) -> None:
    jira_server.projects["ST"] = ["Question"]
    code, output = run()
    assert code == 1
    assert "Question" in line(output, "issue type 'Task' in ST")
    assert "tickets.issue_type" in line(output, "issue type 'Task' in ST")


def test_without_an_issue_the_transition_is_not_checked(run, jira_server: JiraServer) -> None:
    code, output = run()
    assert code == 0, output
    assert "not checked" in line(output, "transition 'Done'")
    assert jira_server.calls("GET", r"/transitions$") == []


def test_refused_credentials_stop_the_check_without_showing_the_token(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTRENEW_JIRA__TOKEN", "revoked-token-3b9d")
    code, output = run()
    assert code == 1
    assert "MISSING" in line(output, "credentials")
    assert "CERTRENEW_JIRA__TOKEN" in output
    assert "revoked-token-3b9d" not in output


def test_unreachable_jira(run, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = JiraServer()
    closed._httpd.server_close()
    monkeypatch.setenv("CERTRENEW_JIRA__URL", closed.url)
    code, output = run()
    assert code == 1
    assert "MISSING" in line(output, "reachable")


def test_no_url_is_a_configuration_error(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CERTRENEW_JIRA__URL")
    code, output = run()
    assert code == 3
    assert "CERTRENEW_JIRA__URL" in output


def test_issue_that_does_not_exist(run) -> None:
    code, output = run("--issue", "SIS-404")
    assert code == 1
    assert "no ticket SIS-404" in line(output, "transition 'Done'")


@pytest.mark.parametrize(
    "token",
    ["first-line-secret-5e1a\nsecond-line", "tab\tinside-secret-5e1a", "euro€-secret-5e1a"],
    ids=["newline", "tab", "not-ascii"],
)
def test_a_token_no_header_can_carry_is_refused_without_showing_it(
    run, monkeypatch: pytest.MonkeyPatch, jira_server: JiraServer, token: str
) -> None:
    monkeypatch.setenv("CERTRENEW_JIRA__TOKEN", token)
    code, output = run()
    assert code == 3, output
    assert "CERTRENEW_JIRA__TOKEN" in output and "one line" in output
    assert "secret-5e1a" not in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output
    assert jira_server.exchanges == []  # refused before anything was sent


def test_a_token_file_ending_in_a_line_break_still_works(
    run, monkeypatch: pytest.MonkeyPatch, jira_server: JiraServer
) -> None:
    monkeypatch.setenv("CERTRENEW_JIRA__TOKEN", f"{jira_server.token}\n")
    code, output = run()
    assert code == 0, output


def test_a_password_basic_auth_cannot_carry_is_refused_without_showing_it(
    run, monkeypatch: pytest.MonkeyPatch, jira_server: JiraServer
) -> None:
    monkeypatch.delenv("CERTRENEW_JIRA__TOKEN")
    monkeypatch.setenv("CERTRENEW_JIRA__USER", "svc-certrenew")
    monkeypatch.setenv("CERTRENEW_JIRA__PASSWORD", "contrasenya€-secret-77b0")
    code, output = run()
    assert code == 3, output
    assert "CERTRENEW_JIRA__PASSWORD" in output and "secret-77b0" not in output
    assert len(output.strip().splitlines()) == 1, output
    with pytest.raises(ConfigError) as refused:
        JiraTracker.from_settings(
            JiraSettings(url=jira_server.url, user="svc", password=SecretStr("€-secret-77b0"))
        )
    assert refused.value.__context__ is None  # nothing that holds the password rides along
    assert jira_server.exchanges == []
