"""`certrenew history` after a real renewal: the Prefect API and the local tracker, read back.

One renewal runs in the served deployment with people answering through the
API under distinct names; the real command then has to tell who decided what,
and when, without anyone opening the tickets.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.tasks.forms import Question, pause_key
from tests.fixtures_renewal import RenewalLab
from tests.test_renewal_flow import key_lines

pytestmark = pytest.mark.prefect

CA_CHOSEN_BY = "Anna [support]"
FILED_BY = "Jordi [support]"
RETIRED_BY = "Marta [security]"
KINDS = ("csr", "owner", "install")


def history(config: Path, name: str, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["history", name, "--config", str(config), *options],
        env={"COLUMNS": "250", "NO_COLOR": "1"},
    )
    return result.exit_code, result.output


def only(events: list[dict[str, Any]], **wanted: str) -> dict[str, Any]:
    [event] = [e for e in events if all(e[k] == v for k, v in wanted.items())]
    return event


def check_renewal_story(
    renewal: dict[str, Any], domain: str, tickets: dict[str, str], names: dict[str, str]
) -> None:
    """What an auditor asks, answered from one renewal of `certrenew history --json`.

    `tickets` by role (csr, owner, install); `names` who answered each question.
    """
    events = renewal["events"]
    moments = [datetime.fromisoformat(e["at"]) for e in events]
    assert moments == sorted(moments), "the timeline runs oldest first"
    assert sorted(renewal["tickets"]) == sorted(tickets.values())

    ca = only(renewal["answers"], step=Question.CA_CHOICE)
    assert ca["actor"] == names[Question.CA_CHOICE] and ca["details"]["ca"] == "CESICAT"
    filed = only(renewal["answers"], step=Question.CA_REQUEST)
    assert filed["actor"] == names[Question.CA_REQUEST]
    number = filed["details"]["request_number"]
    retired = only(renewal["answers"], step=Question.RETIRE)
    assert retired["actor"] == names[Question.RETIRE]
    assert retired["details"]["outcome"] == "Revoked at the CA"
    assert datetime.fromisoformat(retired["at"]) > datetime.fromisoformat(filed["at"])

    # The flow asked each question before it was answered, in the run the answer belongs to.
    for answer in (ca, filed, retired):
        asked = only(events, kind="waiting", step=answer["step"])
        assert asked["where"] == answer["where"] and asked["at"] <= answer["at"]

    # The run's state history holds each wait, and how it ended.
    [run] = renewal["runs"]
    paused = [state["pause_key"] for state in run["states"] if state["type"] == "PAUSED"]
    assert {ca["step"], filed["step"], retired["step"]} <= set(paused)
    assert run["states"][-1]["type"] == "COMPLETED" and run["state"] == "Completed"

    # The step comments say the same, with who and the run's page.
    requested = [e for e in events if e["kind"] == "comment" and e["step"] == "ca-requested"]
    assert {e["where"] for e in requested} == {tickets["csr"], tickets["owner"]}
    assert all(e["actor"] == filed["actor"] and e["link"] == run["url"] for e in requested)
    assert all(number in e["what"] for e in requested)
    closing = [e for e in events if e["kind"] == "comment" and e["step"] == "retired"]
    assert {e["where"] for e in closing} == set(tickets.values())
    assert all(e["actor"] == retired["actor"] for e in closing)

    # The key came and went; the install ticket links the two before it.
    key = f"{domain}.key"
    added = only(events, kind="attachment-added", where=tickets["csr"], what=f"attached {key}")
    removed = only(events, kind="attachment-removed", where=tickets["csr"], what=f"removed {key}")
    assert added["at"] <= removed["at"]
    links = {(e["where"], e["what"]) for e in events if e["kind"] == "link"}
    assert links == {
        (tickets["install"], f"linked to {tickets[other]} (Relates)") for other in ("csr", "owner")
    }


def run_audited_renewal(lab: RenewalLab, name: str) -> tuple[str, str, bytes]:
    """One renewal answered by three named people; (domain, renewal id, the key)."""
    domain, _server, rid, people = lab.serve_renewal(name)
    run = lab.start(name)
    run.answer_each(people, rid, pause_key(Question.CSR, 1))
    run.wait_paused(Question.CA_CHOICE)
    run.resume(ca="CESICAT", answered_by=CA_CHOSEN_BY)
    run.wait_paused(Question.CA_REQUEST)
    run.resume(request_number="REQ-4711", requested_by=FILED_BY)
    run.answer_each(people, rid, pause_key(Question.CERTIFICATE, 1), pause_key(Question.INSTALL, 1))
    run.wait_paused(Question.RETIRE)
    run.resume(outcome="Revoked at the CA", confirmed_by=RETIRED_BY)
    assert run.wait_final().is_completed()
    return domain, rid, people.generated["key"]


def test_history_tells_who_chose_the_ca_filed_the_request_and_retired_the_old_one(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    domain, rid, key = run_audited_renewal(lab, "audited")
    tickets = {kind: lab.tracker().find_tickets(f"{rid}-{kind}")[0].key for kind in KINDS}

    code, out = history(lab.config, "audited", "--json")
    assert code == 0, out
    document = json.loads(out)
    assert (document["name"], document["domain"]) == ("audited", domain)
    [renewal] = document["renewals"]
    assert renewal["renewal"] == rid
    names: dict[str, str] = {
        Question.CA_CHOICE: CA_CHOSEN_BY,
        Question.CA_REQUEST: FILED_BY,
        Question.RETIRE: RETIRED_BY,
    }
    check_renewal_story(renewal, domain, tickets, names)
    assert only(renewal["answers"], step=Question.CA_REQUEST)["details"]["request_number"] == (
        "REQ-4711"
    )

    # The same story for people, looked up by domain; brackets in names are shown as typed.
    code, text = history(lab.config, domain)
    assert code == 0, text
    for said in (CA_CHOSEN_BY, FILED_BY, RETIRED_BY, "REQ-4711", f"removed {domain}.key"):
        assert said in text, said
    assert f"linked to {tickets['csr']}" in text
    assert "[certrenew:" not in text, "step markers are read, not repeated"
    for line in key_lines(key):
        assert line not in out and line not in text


def test_runs_that_renewed_nothing_are_told_apart_and_a_quiet_certificate_has_no_history(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    lab.serve_certificate("never-renewed", days=200)
    code, text = history(lab.config, "never-renewed")
    assert code == 0, text
    assert "no renewal has run yet" in text

    assert lab.start("never-renewed").wait_final().is_completed()  # fresh: nothing to renew
    code, out = history(lab.config, "never-renewed", "--json")
    assert code == 0, out
    [nothing] = json.loads(out)["renewals"]
    assert (nothing["renewal"], nothing["tickets"], nothing["answers"]) == ("", [], [])
    assert [run["state"] for run in nothing["runs"]] == ["Completed"]
