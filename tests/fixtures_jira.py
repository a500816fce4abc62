"""Fixtures for anything that talks to Jira: the test server, settings for it, the tracker.

`jira_server` is a fresh Jira-compatible server per test, Server/DC by default;
parametrize it indirectly for Cloud:

    @pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)

When the test ends, every answer the server gave is checked against Atlassian's
OpenAPI description (loaded once per session); a mismatch fails the test.
`jira_env` points the whole configuration at the server through the same
CERTRENEW_* variables production uses, for tests that run the renewal end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.config import JiraSettings
from certrenew.lab.jira_server import JiraServer
from tests.jira_openapi import JiraSpec, spec_path

# The OpenAPI check's own test runs a test session inside the test session.
pytest_plugins = ["pytester"]

FAST_RETRIES = {
    "retry_attempts": 3,
    "retry_base_delay_seconds": 0.01,
    "retry_max_delay_seconds": 0.05,
}


@pytest.fixture(scope="session")
def jira_spec() -> JiraSpec:
    return JiraSpec(spec_path())


@pytest.fixture
def jira_server(request: pytest.FixtureRequest, jira_spec: JiraSpec) -> Iterator[JiraServer]:
    server = JiraServer(getattr(request, "param", "Server")).start()
    try:
        yield server
    finally:
        server.stop()
    problems = [p for exchange in server.exchanges for p in jira_spec.problems(exchange)]
    assert not problems, "answers that do not match Jira's OpenAPI description:\n" + "\n".join(
        problems
    )


@pytest.fixture
def jira_settings(jira_server: JiraServer) -> JiraSettings:
    """Token auth against the test server, with retry delays of milliseconds."""
    return JiraSettings(
        url=jira_server.url,
        token=SecretStr(jira_server.token or ""),
        timeout_seconds=5,
        **FAST_RETRIES,
    )


@pytest.fixture
def jira_tracker(jira_settings: JiraSettings) -> JiraTracker:
    return JiraTracker.from_settings(jira_settings)


@pytest.fixture
def jira_env(jira_server: JiraServer, monkeypatch: pytest.MonkeyPatch) -> JiraServer:
    """tracker = "jira" and the server's URL and token, set the way an operator sets them."""
    monkeypatch.setenv("CERTRENEW_TRACKER", "jira")
    monkeypatch.setenv("CERTRENEW_JIRA__URL", jira_server.url)
    monkeypatch.setenv("CERTRENEW_JIRA__TOKEN", jira_server.token or "")
    for name, value in FAST_RETRIES.items():
        monkeypatch.setenv(f"CERTRENEW_JIRA__{name.upper()}", str(value))
    return jira_server
