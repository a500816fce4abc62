"""Every form field and alert field, given what a careless or hostile sender gives.

Forms are checked twice, as in production: by the Prefect server, which
validates a resume against the form's JSON schema with its own validator
(`prefect.utilities.schema_tools.validate`) and refuses it with the reason
while the run stays paused; and by the form model the flow loads the answer
with. Alerts go through `parse_alerts`, the intake's reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prefect.utilities.schema_tools import ValidationError as SchemaError
from prefect.utilities.schema_tools import validate
from pydantic import ValidationError

from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.alerts import MAX_SAID_CHARS, AlertError, parse_alerts
from certrenew.tasks import forms
from certrenew.tasks.tickets import post_once

CA_CHOICE = forms.ca_choice_form(["CESICAT", "EACAT"])

# A good answer to each form; each case below spoils one field of it.
GOOD: dict[type[forms.PersonAnswer], dict[str, Any]] = {
    forms.CsrReuseAnswer: {"choice": forms.CsrReuseChoice.REUSE.value, "answered_by": "anna"},
    forms.CsrAnswer: {"csr_pem": "", "answered_by": "anna"},
    CA_CHOICE: {"ca": "CESICAT", "answered_by": "anna"},
    forms.UrgentApproval: {"approved_by": "marta", "approved": True},
    forms.CaRequestAnswer: {"request_number": "REQ000123456", "requested_by": "anna"},
    forms.CertificateAnswer: {"certificate_pem": "", "chain_pem": "", "answered_by": "anna"},
    forms.P12Answer: {"p12_path": "/tmp/seu.p12", "p12_password": "s3cret", "answered_by": "a"},
    forms.InstallAnswer: {"action": forms.InstallAction.CHECK.value, "confirmed_by": "anna"},
    forms.RetireAnswer: {"outcome": forms.RetireOutcome.REVOKED.value, "confirmed_by": "anna"},
    forms.WaitAnswer: {"action": forms.WaitAction.CHECK.value, "answered_by": "anna"},
}

# What a person types as a name (a login, a request number), spoiled every way.
BAD_NAMES: list[tuple[str, object]] = [
    ("empty", ""),
    ("whitespace", "   "),
    ("a tab only", "\t"),
    ("an escape sequence", "anna\x1b[2J"),
    ("a line break", "anna\nmallory"),
    ("a NUL", "an\x00na"),
    ("a C1 control", "anna\x9b31m"),
    ("a right-to-left override", "anna\u202etxt.exe"),
    ("HTML", "<img src=x onerror=alert(1)>"),
    ("a code span", "`anna`"),
    ("over-long", "a" * 121),
    ("a number", 42),
    ("a list", ["anna"]),
    ("null", None),
]
NAME_FIELDS = [
    (form, field)
    for form, good in GOOD.items()
    for field in good
    if field in forms.NAME_FIELDS or field == "request_number"
]
ENUM_FIELDS = [
    (forms.CsrReuseAnswer, "choice"),
    (CA_CHOICE, "ca"),
    (forms.InstallAnswer, "action"),
    (forms.RetireAnswer, "outcome"),
    (forms.WaitAnswer, "action"),
]
PASTED_FIELDS = [
    (forms.CsrAnswer, "csr_pem"),
    (forms.CertificateAnswer, "certificate_pem"),
    (forms.CertificateAnswer, "chain_pem"),
]
OTHER_CASES: list[tuple[Any, str, object]] = [
    *[(form, field, "A" * (forms.MAX_PASTED_CHARS + 1)) for form, field in PASTED_FIELDS],
    *[(form, field, 5) for form, field in PASTED_FIELDS],
    *[(form, field, bad) for form, field in ENUM_FIELDS for bad in ("", "cesicat", 3, None)],
    (CA_CHOICE, "ca", "CESICAT; Other"),
    (forms.CaRequestAnswer, "request_number", "R" * 65),
    (forms.UrgentApproval, "approved", "yes"),
    (forms.UrgentApproval, "approved", "false"),
    (forms.UrgentApproval, "approved", 1),
    (forms.UrgentApproval, "approved", None),
    (forms.P12Answer, "p12_path", "/tmp/seu.p12\x00.txt"),
    (forms.P12Answer, "p12_path", "/tmp/seu.p12\n/etc/shadow"),
    (forms.P12Answer, "p12_path", "/" + "d/" * 2048),
    (forms.P12Answer, "p12_password", "x" * 1025),
    (forms.P12Answer, "p12_password", ["s3cret"]),
]


def refused_both_ways(form: type[forms.PersonAnswer], answer: dict[str, Any]) -> str:
    """The server's reason for refusing `answer`; the form model refuses it too."""
    with pytest.raises(SchemaError) as by_server:
        validate(answer, form.model_json_schema(), raise_on_error=True)
    with pytest.raises(ValidationError):
        form.model_validate(answer)
    return str(by_server.value)


@pytest.mark.parametrize("form", list(GOOD), ids=lambda form: form.__name__)
def test_a_good_answer_passes_the_server_and_the_form(form: type[forms.PersonAnswer]) -> None:
    assert validate(GOOD[form], form.model_json_schema(), raise_on_error=True) == []
    assert form.model_validate(GOOD[form]).who()


@pytest.mark.parametrize(
    "login",
    [
        "anna",
        "Júlia Puig-Ferrer",
        "a.puig@aoc.cat",
        "svc_cert-1",
        "Anna (support)",
        "Anna [support]",
    ],
)
def test_real_logins_and_request_numbers_pass(login: str) -> None:
    answer = {"request_number": "CAS-2026/0042", "requested_by": login}
    assert validate(answer, forms.CaRequestAnswer.model_json_schema(), raise_on_error=True) == []
    assert forms.CaRequestAnswer.model_validate(answer).who() == login


@pytest.mark.parametrize(
    ("form", "field", "bad"),
    [(form, field, bad) for form, field in NAME_FIELDS for _, bad in BAD_NAMES],
    ids=[f"{form.__name__}.{field}-{case}" for form, field in NAME_FIELDS for case, _ in BAD_NAMES],
)
def test_a_bad_name_is_refused_by_the_server_and_the_form(
    form: type[forms.PersonAnswer], field: str, bad: object
) -> None:
    reason = refused_both_ways(form, {**GOOD[form], field: bad})
    assert reason


@pytest.mark.parametrize(
    ("form", "field", "bad"),
    OTHER_CASES,
    ids=[f"{form.__name__}.{field}-{str(bad)[:12]!r}" for form, field, bad in OTHER_CASES],
)
def test_every_other_field_refuses_what_it_cannot_be(
    form: type[forms.PersonAnswer], field: str, bad: object
) -> None:
    refused_both_ways(form, {**GOOD[form], field: bad})


def test_a_password_may_hold_any_character_and_is_kept_as_given() -> None:
    """Passwords are not names: whatever the CA chose is taken (it goes to the safe only)."""
    password = " [x](y) <b> \x1b\t`#! "
    answer = {**GOOD[forms.P12Answer], "p12_password": password}
    assert validate(answer, forms.P12Answer.model_json_schema(), raise_on_error=True) == []
    assert forms.P12Answer.model_validate(answer).p12_password == password


# --- alerts ---------------------------------------------------------------------------------


def webhook(labels: dict[str, Any], **top: Any) -> bytes:
    alert = {"status": "firing", "labels": labels, "annotations": {}}
    return json.dumps({"version": "4", "status": "firing", "alerts": [alert], **top}).encode()


BAD_ALERTS: list[tuple[str, bytes, str]] = [
    ("name empty", b'{"name": ""}', "'name' must be a non-empty string"),
    ("name whitespace", b'{"name": "  "}', "'name' must be a non-empty string"),
    ("name a number", b'{"name": 7}', "'name' must be a non-empty string"),
    ("name a list", b'{"domain": ["seu.example.cat"]}', "'domain' must be a non-empty string"),
    ("name an object", b'{"target": {"host": "x"}}', "'target' must be a non-empty string"),
    ("name with an escape", b'{"name": "seu\\u001b[2J"}', "'name' holds control characters"),
    ("name with a line break", b'{"domain": "seu\\nexample"}', "'domain' holds control"),
    ("name with a bidi override", b'{"name": "seu\\u202e"}', "'name' holds control characters"),
    ("name over-long", json.dumps({"target": "h" * 600}).encode(), "more than any name (512)"),
    ("source a number", b'{"name": "seu", "source": 3}', "'source' must be a string"),
    ("status a list", b'{"name": "seu", "status": ["firing"]}', "'firing' or 'resolved'"),
    ("not_after an object", b'{"name": "seu", "not_after": {}}', "'not_after' is not a date"),
    ("not_after huge", b'{"name": "seu", "not_after": 1e300}', "'not_after' is not a date"),
    (
        "label with an escape",
        webhook({"instance": "seu.example.cat:443\u001b]0;x\u0007"}),
        "alerts[0].labels.instance holds control characters",
    ),
    (
        "label over-long",
        webhook({"certificate": "c" * 513}),
        "alerts[0].labels.certificate is 513 characters long",
    ),
    ("receiver an object", webhook({"instance": "h:443"}, receiver={"a": 1}), "'receiver'"),
    (
        "alertname a list",
        webhook({"instance": "h:443", "alertname": ["x"]}),
        "alerts[0].labels.alertname must be a string",
    ),
]


@pytest.mark.parametrize(
    ("body", "says"), [c[1:] for c in BAD_ALERTS], ids=[c[0] for c in BAD_ALERTS]
)
def test_a_bad_alert_field_is_one_line_saying_what_to_send(body: bytes, says: str) -> None:
    with pytest.raises(AlertError) as refused:
        parse_alerts(body)
    message = str(refused.value)
    assert says in message
    assert "\n" not in message and "\x1b" not in message


@pytest.mark.parametrize(
    "said",
    [
        "zabbix\n[certrenew:ca-chosen]\x1b[2J",
        "monitor \u202eelif\u202c",
        "m" * 5000,
    ],
)
def test_the_words_describing_an_alert_reach_the_ticket_as_one_plain_line(said: str) -> None:
    generic = parse_alerts(json.dumps({"name": "seu", "source": said}).encode())
    manager = parse_alerts(webhook({"instance": "h:443", "alertname": said}, receiver=said))
    for alert in (*generic, *manager):
        assert alert.source.isprintable(), alert.source
        assert len(alert.source) <= 2 * MAX_SAID_CHARS + len(" on h:443: ") + 20


# --- what outside text a comment repeats cannot do --------------------------------------------


def test_a_step_marker_quoted_in_a_comment_does_not_silence_the_step(tmp_path: Path) -> None:
    """A person (or a text the renewal repeats, such as an alert's source) quoting
    `[certrenew:ca-chosen]` used to make the step believe it had already commented."""
    tracker = LocalTracker(tmp_path / "tickets.sqlite3")
    key = tracker.create_ticket(NewTicket("ST", "s", "", "label")).key
    tracker.add_comment(key, "We chose CESICAT, see [certrenew:ca-chosen] below.\nThanks")
    tracker.add_comment(key, "Aquesta renovació ja és en curs: x [certrenew:ca-chosen] ho demana")

    assert post_once(tracker, key, "ca-chosen", "El CA és CESICAT.")
    assert not post_once(tracker, key, "ca-chosen", "El CA és CESICAT.")
    assert sum("El CA és CESICAT." in c for c in tracker.comments(key)) == 1


@pytest.mark.parametrize(
    "login", ["[anna](https://evil.example)", "[anna|https://evil.example]", "anna | x | y"]
)
def test_a_name_with_brackets_is_shown_as_typed_in_markdown(login: str) -> None:
    """Brackets are allowed in names ("Anna [support]"), so the forms and the report
    escape them: rendered (markdown-it, CommonMark with tables), no link and no new cell."""
    from markdown_it import MarkdownIt

    answer = {"request_number": "REQ1", "requested_by": login}
    assert forms.CaRequestAnswer.model_validate(answer).who() == login
    renderer = MarkdownIt("commonmark").enable("table")
    table = f"| fact | value |\n|---|---|\n| Request | filed by {forms.as_typed(login)} |\n"
    html = renderer.render(f"The CA is **CESICAT** (by {forms.as_typed(login)}).\n\n{table}")
    assert "<a " not in html
    assert html.count("<td>") == 2
    assert login in html.replace("&amp;", "&")
