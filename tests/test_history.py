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
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import Question, pause_key
from tests.fixtures_renewal import RenewalLab
from tests.test_renewal_flow import key_lines, served_serial

pytestmark = pytest.mark.prefect

CA_CHOSEN_BY = "Anna [support]"
FILED_BY = "Jordi [support]"
RETIRED_BY = "Marta [security]"


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


def check_renewal_story(renewal: dict[str, Any], domain: str, csr_ticket: str) -> None:
    """What an auditor asks, answered from one renewal of `certrenew history --json`."""
    events = renewal["events"]
    moments = [datetime.fromisoformat(e["at"]) for e in events]
    assert moments == sorted(moments), "the timeline runs oldest first"

    ca = only(renewal["answers"], step=Question.CA_CHOICE)
    assert ca["actor"] == CA_CHOSEN_BY and ca["details"]["ca"] == "CESICAT"
    filed = only(renewal["answers"], step=Question.CA_REQUEST)
    assert filed["actor"] == FILED_BY and filed["details"]["request_number"] == "REQ-4711"
    retired = only(renewal["answers"], step=Question.RETIRE)
    assert retired["actor"] == RETIRED_BY
    assert retired["details"]["outcome"] == "Revoked at the CA"
    assert datetime.fromisoformat(retired["at"]) > datetime.fromisoformat(filed["at"])

    # The flow asked each question before it was answered, in the run the answer belongs to.
    for answer in (ca, filed, retired):
        asked = only(events, kind="waiting", step=answer["step"])
        assert asked["where"] == answer["where"] and asked["at"] <= answer["at"]

    # The step comments say the same, with who and the run's page.
    [run] = renewal["runs"]
    requested = [e for e in events if e["kind"] == "comment" and e["step"] == "ca-requested"]
    assert requested and all(e["actor"] == FILED_BY for e in requested)
    assert all(e["link"] == run["url"] and "REQ-4711" in e["what"] for e in requested)
    closing = [e for e in events if e["kind"] == "comment" and e["step"] == "retired"]
    assert {e["where"] for e in closing} == set(renewal["tickets"])
    assert all(e["actor"] == RETIRED_BY for e in closing)

    # The key came and went; the install ticket links the two before it.
    key = f"{domain}.key"
    added = only(events, kind="attachment-added", where=csr_ticket, what=f"attached {key}")
    removed = only(events, kind="attachment-removed", where=csr_ticket, what=f"removed {key}")
    assert added["at"] <= removed["at"]
    links = [e for e in events if e["kind"] == "link"]
    others = sorted(t for t in renewal["tickets"] if not t.startswith("SIS-") or t == csr_ticket)
    assert sorted(e["what"].split()[2] for e in links) == others
    assert len({e["where"] for e in links}) == 1


def run_audited_renewal(lab: RenewalLab, name: str) -> tuple[str, str, bytes]:
    """One renewal answered by three named people; (domain, renewal id, the key)."""
    domain, server = lab.serve_certificate(name)
    rid = renewal_id(domain, served_serial(lab, name))
    people = lab.people(domain, server)
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
    [csr_ticket] = lab.tracker().find_tickets(f"{rid}-csr")

    code, out = history(lab.config, "audited", "--json")
    assert code == 0, out
    document = json.loads(out)
    assert (document["name"], document["domain"]) == ("audited", domain)
    [renewal] = document["renewals"]
    assert renewal["renewal"] == rid and len(renewal["tickets"]) == 3
    check_renewal_story(renewal, domain, csr_ticket.key)

    # The same story for people, looked up by domain; brackets in names are shown as typed.
    code, text = history(lab.config, domain)
    assert code == 0, text
    for said in (CA_CHOSEN_BY, FILED_BY, RETIRED_BY, "REQ-4711", f"removed {domain}.key"):
        assert said in text, said
    assert f"linked to {csr_ticket.key}" in text
    assert "[certrenew:" not in text, "step markers are read, not repeated"
    for line in key_lines(key):
        assert line not in out and line not in text
