"""`certrenew demo` taken from its first form to retirement through the browser alone.

The real interactive demo runs as a person starts it; the test reads only what
the demo prints (each step, what to do, the run's page, where the mailed
certificate is) and answers every support-staff step in the Prefect UI, as a
person at the keyboard does. Every form is screenshotted under
tests/output/screenshots/.
"""

from __future__ import annotations

import json
import queue
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from certrenew.adapters.tracker.local import LocalTracker
from certrenew.deployments.demo import DEMO_DOMAIN
from certrenew.pki.certs import serial_hex
from certrenew.tasks.forms import Question, question_of
from tests.fixtures_browser import BrowserUser, ResumeForm, RunPage
from tests.fixtures_demo import Demo, prefect_servers, processes_of

pytestmark = [pytest.mark.prefect, pytest.mark.browser]

LOGIN = "anna"
REQUEST_NUMBER = "REQ004242"


def answer_in_the_ui(demo: Demo, user: BrowserUser, step: str) -> None:
    """Answer the step the demo says it waits for, from what the demo printed, in the UI."""
    kind = question_of(step)
    mailed = None
    if kind == Question.CERTIFICATE:
        mailed = Path(demo.wait_for(r"The CA mailed the new certificate: (\S+)\. Paste").group(1))
    page = demo.wait_for(r"Answer it in the Prefect UI: (\S+) \(Resume\)").group(1)
    ui = RunPage(user, page)
    if kind == Question.CA_CHOICE:
        form = ui.open_form(f"Which CA renews {DEMO_DOMAIN}?")
        form.choose("CA named by the service owner", "CESICAT")
    elif kind == Question.CA_REQUEST:
        form = ui.open_form(f"File the certificate request for {DEMO_DOMAIN} at CESICAT")
        for shown in ("SIS-1", "ST-1", "Remedy (CTTI)", "Nom de l'aplicació", DEMO_DOMAIN):
            assert shown in form.description(), shown
        form.fill("Request number given by the CA's portal", REQUEST_NUMBER)
    elif kind == Question.CERTIFICATE:
        assert mailed is not None
        form = ui.open_form(f"Waiting for the new certificate of {DEMO_DOMAIN}")
        form.fill("Certificate (PEM)", mailed.read_text(encoding="ascii"))
    elif kind == Question.INSTALL:
        form = ui.open_form(f"Waiting for the installation of {DEMO_DOMAIN}")
        form.choose("What now", "Check the endpoints again")
    elif kind == Question.RETIRE:
        form = ui.open_form(f"Retire the old certificate of {DEMO_DOMAIN}")
        form.choose("What was done with the old certificate", "Revoked at the CA")
    else:
        raise AssertionError(f"the demo asked support staff an unexpected step '{step}'")
    sign_and_submit(form, step)


def sign_and_submit(form: ResumeForm, step: str) -> None:
    form.fill("Your login", LOGIN)
    form.screenshot(step)
    form.submit()


def closing_summary(demo: Demo) -> dict[str, Any]:
    """The JSON the demo prints after "The renewal is complete:", read to its exit."""
    assert demo.proc.wait(timeout=120) == 0, "\n".join(demo.seen)
    rest = []
    while True:
        try:
            rest.append(demo.lines.get(timeout=5))
        except queue.Empty:
            break
    text = "\n".join(rest)
    summary, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
    return dict(summary)


def test_the_interactive_demo_runs_to_retirement_answered_in_the_browser_alone(
    demo: Demo, browser_user: BrowserUser
) -> None:
    demo.wait_for(r"renewal run: \S+/runs/flow-run/")
    assert len(prefect_servers(demo.data_dir)) == 1, prefect_servers(demo.data_dir)
    answered = []
    while True:
        said = demo.wait_for(r"waits for you at step '([^']+)'|The renewal is complete", 600)
        if said.group(1) is None:
            break
        answered.append(said.group(1))
        answer_in_the_ui(demo, browser_user, said.group(1))
    summary = closing_summary(demo)

    assert {"ca-request", "certificate-1", "retire"} <= set(answered), answered
    shots = sorted(p.name for p in browser_user.screenshots.glob("*.png"))
    assert len(shots) == len(answered), shots
    data = demo.data_dir
    [mailed] = (data / "mailbox").glob("*.crt")
    new_serial = serial_hex(x509.load_pem_x509_certificate(mailed.read_bytes()).serial_number)
    assert summary["domain"] == DEMO_DOMAIN
    assert summary["new_serial"] == new_serial != summary["old_serial"]
    assert summary["verified"] is True and summary["retired"] is True
    assert {t["kind"]: t["key"] for t in summary["tickets"]} == {
        "csr": "SIS-1",
        "owner": "ST-1",
        "install": "SIS-2",
    }
    assert any(path.endswith(".crt") for path in summary["archive"])

    tracker = LocalTracker(data / "tickets.sqlite3")
    comments = "\n".join(c for key in ("SIS-1", "ST-1", "SIS-2") for c in tracker.comments(key))
    assert f"número {REQUEST_NUMBER}, per {LOGIN}" in comments
    assert f"número de sèrie {new_serial}" in comments
    for key in ("SIS-1", "ST-1", "SIS-2"):
        closing = [c for c in tracker.comments(key) if "[certrenew:retired]" in c]
        assert len(closing) == 1 and "revocat a la CA" in closing[0], key
        assert f"confirmat per {LOGIN}" in closing[0], key
        assert tracker.get_ticket(key).status == "Done", key
    assert list((data / "outbox").glob("*-revoked.eml"))
    assert processes_of(data) == []
