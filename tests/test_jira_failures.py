"""What the Jira tracker does when Jira refuses, forgets, throttles, fails or goes away.

Every test runs the real `jira` library against the test server on loopback;
retry delays are recorded by an injected sleep instead of waited for.
"""

from __future__ import annotations

import logging
import ssl
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import trustme
from pydantic import SecretStr

from certrenew.adapters.tracker import NewTicket, ensure_ticket
from certrenew.adapters.tracker.jira import JiraTracker, jql_string, label_query
from certrenew.config import JiraSettings
from certrenew.errors import (
    AuthenticationError,
    ConfigError,
    ServiceUnavailable,
    TicketNotFound,
    TrackerError,
)
from certrenew.lab.jira_server import JiraServer, parse_jql
from tests.pki import pem_begin

BOTH = pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
WRONG_TOKEN = "wrong-token-must-not-leak-7f3a"
WRONG_PASSWORD = "wrong-password-must-not-leak-91c2"


def csr_ticket(label: str = "certrenew-r1-csr", **changes: Any) -> NewTicket:
    fields: dict[str, Any] = {
        "project": "SIS",
        "summary": "Generació CSR seu.example.cat",
        "description": "Necessitem el CSR i la clau.",
        "label": label,
        "labels": ("certrenew",),
    }
    fields.update(changes)
    return NewTicket(**fields)


def tracker_for(
    settings: JiraSettings, sleeps: list[float] | None = None, **changes: Any
) -> JiraTracker:
    """A tracker whose waits are recorded in `sleeps`; its clock moves only by them."""
    waits = sleeps if sleeps is not None else []
    return JiraTracker(
        settings.model_copy(update=changes),
        sleep=waits.append,
        clock=lambda: 1_800_000_000.0 + sum(waits),
    )


def everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    return "".join(traceback.format_exception(exc)) + caplog.text


# -- credentials --------------------------------------------------------------------------


def test_refused_token_names_the_settings_and_never_the_token(
    jira_settings: JiraSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tracker = tracker_for(jira_settings, token=SecretStr(WRONG_TOKEN))
    with pytest.raises(AuthenticationError) as caught:
        tracker.find_tickets("certrenew-r1-csr")
    message = str(caught.value)
    assert "CERTRENEW_JIRA__TOKEN" in message
    assert "CERTRENEW_JIRA__USER" in message and "CERTRENEW_JIRA__PASSWORD" in message
    assert "jira.url" in message and "HTTP 401" in message
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert WRONG_TOKEN not in everything_said(caught.value, caplog)


@BOTH
def test_user_and_password_auth_works_and_a_wrong_password_never_leaks(
    jira_server: JiraServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    jira_server.user, jira_server.password = "svc-certrenew", "right-password"
    settings = JiraSettings(url=jira_server.url, user="svc-certrenew", retry_attempts=0)
    good = tracker_for(settings, password=SecretStr("right-password"))
    assert good.create_ticket(csr_ticket()).key == "SIS-1"
    assert (
        jira_server.calls("POST", r"/issue$")[0]
        .request_headers["authorization"]
        .startswith("Basic ")
    )
    bad = tracker_for(settings, password=SecretStr(WRONG_PASSWORD))
    with pytest.raises(AuthenticationError) as caught:
        bad.get_ticket("SIS-1")
    assert WRONG_PASSWORD not in everything_said(caught.value, caplog)


def test_forbidden_at_start_is_an_authentication_error(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    jira_server.fail(403, path=r"/myself$", headers={"X-Authentication-Denied-Reason": "CAPTCHA"})
    with pytest.raises(AuthenticationError, match="HTTP 403"):
        jira_tracker.get_ticket("SIS-1")


def test_forbidden_later_names_the_missing_permission(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    ticket = jira_tracker.create_ticket(csr_ticket())
    attachment = jira_tracker.add_attachment(ticket.key, "seu.key", b"not really a key")
    jira_server.fail(
        403,
        path=r"/attachment/\d+$",
        method="DELETE",
        times=None,
    )
    with pytest.raises(TrackerError, match="no permission") as caught:
        jira_tracker.delete_attachment(ticket.key, attachment)
    assert not isinstance(caught.value, AuthenticationError)
    assert len(jira_server.calls("DELETE", r"/attachment/")) == 1  # not retried


def test_missing_url_or_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="CERTRENEW_JIRA__URL"):
        JiraTracker.from_settings(JiraSettings(token=SecretStr("t")))
    with pytest.raises(ConfigError, match="CERTRENEW_JIRA__TOKEN"):
        JiraTracker.from_settings(JiraSettings(url="https://jira.example.org", user="svc"))


def test_secrets_from_files_and_never_from_the_url(tmp_path, jira_server: JiraServer) -> None:
    token_file = tmp_path / "jira-token"
    token_file.write_text(f"{jira_server.token}\n", encoding="utf-8")
    tracker = JiraTracker.from_settings(JiraSettings(url=jira_server.url, token_file=token_file))
    assert tracker.whoami() == "svc-certrenew"
    with pytest.raises(ConfigError) as caught:
        JiraTracker.from_settings(
            JiraSettings(url="https://svc:hunter2-in-url@jira.example.org", token=SecretStr("t"))
        )
    assert "hunter2-in-url" not in str(caught.value)


def test_building_the_tracker_sends_nothing(jira_server: JiraServer, jira_settings) -> None:
    JiraTracker.from_settings(jira_settings)
    assert jira_server.exchanges == []


# -- tickets deleted by hand ------------------------------------------------------------


@BOTH
def test_ticket_deleted_by_hand_is_reported_for_every_step(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    ticket = jira_tracker.create_ticket(csr_ticket())
    other = jira_tracker.create_ticket(csr_ticket("certrenew-r1-owner", project="ST"))
    jira_server.delete_issue(ticket.key)
    steps = [
        lambda: jira_tracker.get_ticket(ticket.key),
        lambda: jira_tracker.add_comment(ticket.key, "Clau arxivada."),
        lambda: jira_tracker.comments(ticket.key),
        lambda: jira_tracker.attachments(ticket.key),
        lambda: jira_tracker.add_attachment(ticket.key, "seu.csr", b"csr"),
        lambda: jira_tracker.links(ticket.key),
        lambda: jira_tracker.link_tickets(other.key, ticket.key, "Relates"),
        lambda: jira_tracker.close_ticket(ticket.key),
    ]
    for step in steps:
        with pytest.raises(TicketNotFound) as caught:
            step()
        assert f"{ticket.key}" in str(caught.value)
        assert "deleted by hand?" in str(caught.value)


def test_attachment_deleted_by_hand_says_so(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    ticket = jira_tracker.create_ticket(csr_ticket())
    attachment = jira_tracker.add_attachment(ticket.key, "seu.csr", b"csr bytes")
    jira_server.attachments.clear()
    with pytest.raises(TrackerError, match=r"seu\.csr is no longer attached to SIS-1"):
        jira_tracker.download_attachment(ticket.key, attachment)
    jira_tracker.delete_attachment(ticket.key, attachment)  # already gone: nothing to do


# -- throttling, outages, lost answers ---------------------------------------------------


@BOTH
def test_429_waits_as_long_as_retry_after_says(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    sleeps: list[float] = []
    tracker = tracker_for(jira_settings, sleeps, retry_max_delay_seconds=10)
    tracker.create_ticket(csr_ticket())
    jira_server.fail(429, path=r"/search", headers={"Retry-After": "7"})
    assert [t.key for t in tracker.find_tickets("certrenew-r1-csr")] == ["SIS-1"]
    assert sleeps == [7.0]
    assert [e.status for e in jira_server.calls("GET", r"/search")] == [429, 200]


def test_503_with_retry_after_as_a_date_is_honoured_too(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    sleeps: list[float] = []
    tracker = tracker_for(jira_settings, sleeps, retry_max_delay_seconds=30)
    tracker.whoami()
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    jira_server.fail(503, path=r"/myself$", headers={"Retry-After": later})
    assert tracker.whoami() == "svc-certrenew"
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 20


def test_retry_after_longer_than_allowed_hands_over_to_the_flow(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    sleeps: list[float] = []
    tracker = tracker_for(jira_settings, sleeps, retry_max_delay_seconds=60)
    tracker.whoami()
    jira_server.fail(429, path=r"/myself", headers={"Retry-After": "3600"})
    with pytest.raises(ServiceUnavailable, match="asks to wait 3600 s"):
        tracker.whoami()
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_exponential_backoff(
    jira_server: JiraServer, jira_settings: JiraSettings, status: int
) -> None:
    sleeps: list[float] = []
    tracker = tracker_for(
        jira_settings,
        sleeps,
        retry_attempts=4,
        retry_base_delay_seconds=0.5,
        retry_max_delay_seconds=1.5,
    )
    tracker.whoami()
    jira_server.fail(status, path=r"/myself$", times=3)
    assert tracker.whoami() == "svc-certrenew"
    assert sleeps == [0.5, 1.0, 1.5]
    assert [e.status for e in jira_server.calls("GET", r"/myself$")][2:] == [status] * 3 + [200]


@BOTH
def test_jira_down_for_good_raises_service_unavailable_and_creates_nothing(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    sleeps: list[float] = []
    tracker = tracker_for(jira_settings, sleeps, retry_attempts=2)
    tracker.whoami()
    jira_server.fail(502, path=r"/issue$", method="POST", times=None)
    with pytest.raises(ServiceUnavailable) as caught:
        ensure_ticket(tracker, csr_ticket())
    assert "after 3 attempts" in str(caught.value) and "HTTP 502" in str(caught.value)
    assert "waits and tries again later" in str(caught.value)
    assert len(jira_server.calls("POST", r"/issue$")) == 3
    assert jira_server.issues == {}
    # A 502 may come after Jira created the ticket: before each retry the search is
    # repeated until it can be trusted to show it.
    settings = tracker.settings
    assert sum(sleeps) >= 2 * (settings.timeout_seconds + settings.search_lag_seconds)


def test_dropped_connections_are_retried(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    sleeps: list[float] = []
    tracker = tracker_for(jira_settings, sleeps)
    jira_server.drop_connection(path=r"/serverInfo", times=2)
    assert tracker.whoami() == "svc-certrenew"
    assert [e.fault for e in jira_server.calls("GET", r"/serverInfo")] == ["drop", "drop", None]
    assert len(sleeps) == 2


def test_nobody_listening_is_service_unavailable() -> None:
    closed = JiraServer()  # bound, never started, then closed: the port refuses
    url = closed.url
    closed._httpd.server_close()
    tracker = tracker_for(JiraSettings(url=url, token=SecretStr("t"), retry_attempts=1), [])
    with pytest.raises(ServiceUnavailable, match="no answer"):
        tracker.find_tickets("certrenew-r1-csr")


# -- exactly once --------------------------------------------------------------------------


@BOTH
def test_lost_answer_to_create_never_yields_a_second_ticket(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    jira_server.lose_response(path=r"/issue$", method="POST")
    ticket = ensure_ticket(jira_tracker, csr_ticket())
    assert [i.key for i in jira_server.issues_labelled("certrenew-r1-csr")] == [ticket.key]
    creates = jira_server.calls("POST", r"/issue$")
    assert [c.fault for c in creates] == ["lose_response"]


@BOTH
def test_crash_between_create_and_record_then_rerun_finds_the_ticket(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    """The step gives up (the flow would wait); the rerun's search finds what Jira made."""
    first_run = tracker_for(jira_settings, retry_attempts=0)
    jira_server.lose_response(path=r"/issue$", method="POST")
    with pytest.raises(ServiceUnavailable):
        ensure_ticket(first_run, csr_ticket())
    assert len(jira_server.issues_labelled("certrenew-r1-csr")) == 1
    second_run = tracker_for(jira_settings, retry_attempts=0)
    ticket = ensure_ticket(second_run, csr_ticket())
    assert [i.key for i in jira_server.issues_labelled("certrenew-r1-csr")] == [ticket.key]
    assert len(jira_server.calls("POST", r"/issue$")) == 1


def test_lost_answers_to_comment_attachment_and_link_are_not_repeated(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    csr = jira_tracker.create_ticket(csr_ticket())
    install = jira_tracker.create_ticket(csr_ticket("certrenew-r1-install"))
    jira_server.lose_response(path=r"/comment$", method="POST")
    jira_server.lose_response(path=r"/attachments$", method="POST")
    jira_server.lose_response(path=r"/issueLink$", method="POST")
    jira_tracker.add_comment(csr.key, "CSR rebut.")
    added = jira_tracker.add_attachment(csr.key, "seu.csr", b"csr bytes")
    jira_tracker.link_tickets(install.key, csr.key, "Relates")
    assert jira_tracker.comments(csr.key) == ["CSR rebut."]
    assert jira_tracker.attachments(csr.key) == [added]
    assert [link.other_key for link in jira_tracker.links(install.key)] == [csr.key]
    for path in (r"/comment$", r"/attachments$", r"/issueLink$"):
        assert len(jira_server.calls("POST", path)) == 1, path


# -- what Jira is asked --------------------------------------------------------------------


def test_jql_string_escapes_quotes_and_backslashes() -> None:
    assert jql_string('a"b\\c') == '"a\\"b\\\\c"'
    assert label_query("x") == 'labels = "x" ORDER BY created ASC'
    assert parse_jql(label_query("a\"b\\c'd")) == ([("labels", "a\"b\\c'd")], ("created", False))


@BOTH
def test_search_by_label_with_quotes_pages_in_creation_order(
    jira_server: JiraServer, jira_tracker: JiraTracker, jira_settings: JiraSettings
) -> None:
    jira_server.page_size = 2
    label = 'certrenew-"odd\\label'
    # Separate trackers: one would find its own create again (see the exactly-once tests).
    keys = [tracker_for(jira_settings).create_ticket(csr_ticket(label)).key for _ in range(3)]
    jira_tracker.create_ticket(csr_ticket("certrenew-other"))
    assert [t.key for t in jira_tracker.find_tickets(label)] == keys
    searches = jira_server.calls("GET", r"/search")
    assert len(searches) == 2
    assert (
        dict(searches[0].query)["jql"]
        == 'labels = "certrenew-\\"odd\\\\label" ORDER BY created ASC'
    )


@BOTH
def test_unknown_jql_is_refused_like_jira_does(jira_server: JiraServer) -> None:
    search = "/rest/api/2/search/jql" if jira_server.deployment == "Cloud" else "/rest/api/2/search"
    for jql in (
        'labels ~ "x"',
        'nosuchfield = "x"',
        'labels = "x" OR labels = "y"',
        'labels = "\\q"',
        *(["ORDER BY created"] if jira_server.deployment == "Cloud" else []),
    ):
        answer = requests.get(
            jira_server.url + search,
            params={"jql": jql},
            headers={"Authorization": f"Bearer {jira_server.token}"},
            timeout=5,
        )
        assert answer.status_code == 400, jql
        assert answer.json()["errorMessages"], jql


@BOTH
def test_fields_are_explicit_and_complete(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    tracker = tracker_for(
        jira_settings,
        components=["Certificats"],
        custom_fields={"customfield_10100": "from settings"},
    )
    owner = "557058:owner-seu" if jira_server.deployment == "Cloud" else "owner-seu"
    tracker.create_ticket(
        csr_ticket(
            project="ST",
            label="certrenew-r1-owner",
            labels=("certrenew", "cds"),
            assignee=owner,
            issue_type="Task",
            extra_fields={"customfield_10100": "seu.example.cat"},
        )
    )
    sent = jira_server.calls("POST", r"/issue$")[0].json()["fields"]
    assert sent["project"] == {"key": "ST"} and sent["issuetype"] == {"name": "Task"}
    assert sent["labels"] == ["certrenew-r1-owner", "certrenew", "cds"]
    assert sent["components"] == [{"name": "Certificats"}]
    assert sent["assignee"] == (
        {"accountId": owner} if jira_server.deployment == "Cloud" else {"name": owner}
    )
    assert sent["customfield_10100"] == "seu.example.cat"
    assert jira_server.calls("GET", r"/project") == []  # no lookups by guess


def test_field_jira_refuses_is_reported_with_jiras_reason(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    tracker = tracker_for(jira_settings, custom_fields={"customfield_99999": "x"})
    with pytest.raises(TrackerError, match="customfield_99999") as caught:
        tracker.create_ticket(csr_ticket())
    assert "HTTP 400" in str(caught.value)
    assert len(jira_server.calls("POST", r"/issue$")) == 1


def test_close_without_the_configured_transition_names_the_setting(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    jira_server.done_transition = "Resolve"
    ticket = jira_tracker.create_ticket(csr_ticket())
    with pytest.raises(TrackerError, match=r"jira\.done_transition") as caught:
        jira_tracker.close_ticket(ticket.key)
    assert "'Done'" in str(caught.value) and "Resolve" in str(caught.value)


def test_close_with_a_screen_that_requires_fields(
    jira_server: JiraServer, jira_settings: JiraSettings
) -> None:
    jira_server.done_requires = ("resolution",)
    plain = tracker_for(jira_settings)
    ticket = plain.create_ticket(csr_ticket())
    with pytest.raises(TrackerError, match=r"jira\.done_fields") as caught:
        plain.close_ticket(ticket.key)
    assert "Resolution is required" in str(caught.value) and caught.value.__context__ is None
    tracker_for(jira_settings, done_fields={"resolution": {"name": "Done"}}).close_ticket(
        ticket.key
    )
    assert jira_server.issues[ticket.key].status == "Done"
    assert jira_server.calls("POST", r"/transitions$")[-1].json()["fields"] == {
        "resolution": {"name": "Done"}
    }


def test_closing_a_done_ticket_sends_no_transition(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    ticket = jira_tracker.create_ticket(csr_ticket())
    jira_server.set_status(ticket.key, "Done")
    jira_tracker.close_ticket(ticket.key)
    assert jira_server.calls("POST", r"/transitions$") == []


def test_attachment_address_outside_jira_is_refused(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    ticket = jira_tracker.create_ticket(csr_ticket())
    attachment = jira_tracker.add_attachment(ticket.key, "seu.csr", b"csr bytes")

    def elsewhere(method: str, path: str, payload: Any) -> Any:
        if method == "GET" and path.endswith(f"/attachment/{attachment.id}"):
            payload["content"] = "http://127.0.0.2:9/secure/attachment/1/seu.csr"
        return payload

    jira_server.tamper = elsewhere
    with pytest.raises(TrackerError, match="outside"):
        jira_tracker.download_attachment(ticket.key, attachment)


def test_private_ca_is_trusted_through_ca_bundle(tmp_path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = JiraServer(tls=context).start()
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        settings = JiraSettings(
            url=server.url, token=SecretStr(server.token or ""), retry_attempts=0
        )
        with pytest.raises(TrackerError, match=r"jira\.ca_bundle"):
            tracker_for(settings).whoami()
        assert tracker_for(settings, ca_bundle=bundle).whoami() == "svc-certrenew"
    finally:
        server.stop()


@BOTH
def test_a_whole_chain_logs_nothing_secret(
    jira_server: JiraServer, jira_tracker: JiraTracker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    jira_server.fail(503, path=r"/comment$", method="POST", headers={"Retry-After": "0"})
    jira_server.drop_connection(path=r"/attachments$")
    csr = ensure_ticket(jira_tracker, csr_ticket())
    jira_tracker.add_comment(csr.key, "CSR rebut.")
    added = jira_tracker.add_attachment(csr.key, "seu.key", pem_begin("PRIVATE KEY"))
    jira_tracker.delete_attachment(csr.key, added)
    jira_tracker.close_ticket(csr.key)
    assert jira_server.token and jira_server.token not in caplog.text
    assert caplog.records  # the libraries did log: the check is not vacuous


def test_wiring_builds_the_jira_tracker(jira_settings: JiraSettings) -> None:
    from certrenew.adapters.tracker import TicketTracker
    from certrenew.adapters.wiring import build_tracker
    from certrenew.config import Settings

    tracker = build_tracker(Settings(tracker="jira", jira=jira_settings))
    assert isinstance(tracker, JiraTracker) and isinstance(tracker, TicketTracker)
    assert tracker.whoami() == "svc-certrenew"


@BOTH
def test_a_login_is_an_active_user_only_when_jira_knows_it_active(
    jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    jira_server.users.add("asoler")
    jira_server.users.add("left-last-year")
    jira_server.inactive_users.add("left-last-year")
    assert jira_tracker.is_active_user("asoler")
    assert not jira_tracker.is_active_user("left-last-year")
    assert not jira_tracker.is_active_user("nobody-here")
    key = "accountId" if jira_server.deployment == "Cloud" else "username"
    assert [dict(c.query)[key] for c in jira_server.calls("GET", r"/user$")] == [
        "asoler",
        "left-last-year",
        "nobody-here",
    ]
