"""The timeline's assembly as plain functions: no Prefect, no tracker.

And the command's one-line answers when it cannot tell a story: a certificate
the inventory does not know, no Prefect API to ask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.history import (
    Event,
    RunRecord,
    RunState,
    answer_event,
    comment_event,
    renewal_history,
    state_events,
)
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.tls import LocalCA
from certrenew.rules import parse_step_footer, step_footer, step_marker
from certrenew.tasks.forms import who_answered

CERTRENEW = str(Path(sys.executable).with_name("certrenew"))
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RUN_URL = "http://127.0.0.1:4200/runs/flow-run/0b9d"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_step_footer_names_the_step_the_person_and_the_run() -> None:
    footer = step_footer("ca-requested", "Jordi [support]\n· night shift", RUN_URL)
    assert footer.startswith(step_marker("ca-requested"))
    assert "\n" not in footer
    text, parsed = parse_step_footer(f"Sol·licitud presentada.\n\n{footer}\n")
    assert text == "Sol·licitud presentada."
    assert parsed is not None
    assert (parsed.step, parsed.actor, parsed.run_url) == (
        "ca-requested",
        "Jordi [support] night shift",
        RUN_URL,
    )


def test_footers_without_a_person_or_a_run_and_those_of_earlier_releases_are_read() -> None:
    assert (
        parse_step_footer(f"x\n\n{step_footer('archived', '', RUN_URL)}")[1]
        == (parse_step_footer(f"x\n\n{step_marker('archived')} {RUN_URL}")[1])
    )
    _, by_only = parse_step_footer(f"x\n\n{step_footer('retired', 'Marta', '')}")
    assert by_only is not None and (by_only.actor, by_only.run_url) == ("Marta", "")
    text, none = parse_step_footer("Renoveu-lo amb [CESICAT], si us plau.")
    assert none is None and text == "Renoveu-lo amb [CESICAT], si us plau."


def test_a_comment_is_told_by_who_answered_else_by_its_author() -> None:
    body = f"CA escollida: CESICAT.\n\n{step_footer('ca-chosen', 'Anna', RUN_URL)}\n"
    flow = comment_event("ST-1", body, at(1), "svc-certrenew")
    assert (flow.actor, flow.step, flow.link, flow.what) == (
        "Anna",
        "ca-chosen",
        RUN_URL,
        "CA escollida: CESICAT.",
    )
    machine = comment_event("SIS-1", f"ok\n\n{step_marker('archived')} {RUN_URL}", at(2), "svc")
    assert (machine.actor, machine.step) == ("svc", "archived")
    person = comment_event("ST-1", "Amb CESICAT", at(3), "owner-seu")
    assert (person.actor, person.step, person.link) == ("owner-seu", "", "")


def test_only_the_states_an_auditor_needs_are_kept() -> None:
    states = [
        RunState(at(0), "SCHEDULED", "Scheduled"),
        RunState(at(0.1), "PENDING", "Pending"),
        RunState(at(0.2), "RUNNING", "Running"),
        RunState(at(1), "PAUSED", "Suspended", "ca-choice"),
        RunState(at(5), "SCHEDULED", "Resuming"),
        RunState(at(5.1), "RUNNING", "Running"),
        RunState(at(6), "PAUSED", "Suspended", "wait-archive-artifacts-1", "SharePoint is down"),
        RunState(at(9), "COMPLETED", "Completed"),
    ]
    events = state_events("gentle-otter", RUN_URL, states)
    assert [(e.at, e.kind, e.what) for e in events] == [
        (at(0.2), "run-state", "run started"),
        (at(1), "waiting", "waiting for: ca-choice"),
        (at(6), "waiting", "waiting for: wait-archive-artifacts-1 (SharePoint is down)"),
        (at(9), "run-state", "run completed"),
    ]
    assert all(e.where == "gentle-otter" and e.link == RUN_URL for e in events)
    assert [e.step for e in events if e.kind == "waiting"] == [
        "ca-choice",
        "wait-archive-artifacts-1",
    ]


def test_a_question_waited_for_warm_then_suspended_is_one_wait() -> None:
    states = [
        RunState(at(0.2), "RUNNING", "Running"),
        RunState(at(1), "PAUSED", "Paused", "csr-1"),
        RunState(at(121), "RUNNING", "Running"),  # the warm window over: the process leaves
        RunState(at(121.1), "PAUSED", "Suspended", "csr-1"),
        RunState(at(500), "SCHEDULED", "Resuming"),
        RunState(at(505), "RUNNING", "Running"),
        RunState(at(506), "PAUSED", "Paused", "ca-choice"),
    ]
    events = state_events("gentle-otter", RUN_URL, states)
    assert [(e.at, e.what) for e in events if e.kind == "waiting"] == [
        (at(1), "waiting for: csr-1"),
        (at(506), "waiting for: ca-choice"),
    ]


def test_an_answer_names_who_gave_it_and_never_repeats_a_pasted_pem() -> None:
    request = {"request_number": "REQ-4711", "requested_by": "Jordi"}
    filed = answer_event("gentle-otter", RUN_URL, "ca-request", at(2), request, "Jordi")
    assert filed.actor == who_answered(request) == "Jordi"
    assert dict(filed.details) == request
    assert filed.what == "ca-request answered (request_number: REQ-4711, requested_by: Jordi)"

    pem = LocalCA("timeline test CA").cert_pem.decode()
    pasted = answer_event(
        "gentle-otter",
        RUN_URL,
        "certificate-1",
        at(3),
        {"certificate_pem": pem, "chain_pem": ""},
        "",
    )
    shown = dict(pasted.details)
    assert list(shown) == ["certificate_pem"]
    assert shown["certificate_pem"].startswith("pasted CERTIFICATE (")
    assert pem.splitlines()[1] not in pasted.what
    resumed = answer_event("gentle-otter", RUN_URL, "csr-1", at(4), {"csr_pem": ""}, "")
    assert resumed.what == "csr-1 answered (resumed)" and resumed.details == ()


def test_the_timeline_merges_both_sources_oldest_first_keeping_ties_in_order() -> None:
    paused = RunState(at(8), "PAUSED", "Suspended", "retire")
    run = RunRecord("gentle-otter", RUN_URL, "certrenew-seu-1", "Completed", (paused,))
    retire = answer_event(
        "gentle-otter", RUN_URL, "retire", at(9), {"confirmed_by": "Marta"}, "Marta"
    )
    opened = Event(at(0.5), "ticket-opened", "SIS-1", "opened: Generació CSR")
    linked = Event(at(7), "link", "SIS-2", "linked to SIS-1 (Relates)")
    removed = Event(at(7), "attachment-removed", "SIS-1", "removed seu.key")
    waiting = state_events("gentle-otter", RUN_URL, run.states)
    history = renewal_history(
        "certrenew-seu-1", ["SIS-1", "SIS-2"], [run], [retire, linked, removed, opened, *waiting]
    )
    assert [e.what for e in history.events] == [
        "opened: Generació CSR",
        "linked to SIS-1 (Relates)",
        "removed seu.key",
        "waiting for: retire",
        "retire answered (confirmed_by: Marta)",
    ]
    assert history.answers == (retire,)
    document = json.loads(json.dumps(history.as_dict()))
    state = {"at": at(8).isoformat(), "type": "PAUSED", "name": "Suspended"}
    assert document["runs"] == [
        {
            "name": "gentle-otter",
            "url": RUN_URL,
            "renewal": "certrenew-seu-1",
            "state": "Completed",
            "states": [{**state, "pause_key": "retire", "message": ""}],
        }
    ]
    assert document["answers"][0]["details"] == {"confirmed_by": "Marta"}
    assert document["events"][-1]["at"] == at(9).isoformat()


def one_certificate(tmp_path: Path) -> Path:
    """A configuration whose inventory holds `seu` only."""
    inventory = tmp_path / "inventory.yaml"
    write_inventory(inventory, [inventory_entry("seu", "seu.example.cat", "127.0.0.1:443")])
    config = tmp_path / "certrenew.toml"
    config.write_text(f'inventory = "{inventory}"\ndata_dir = "data"\n', encoding="utf-8")
    return config


def test_an_unknown_certificate_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    config = one_certificate(tmp_path)
    result = CliRunner().invoke(
        app, ["history", "intranet", "--config", str(config)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 3
    [line] = result.output.strip().splitlines()
    assert "no certificate named 'intranet'" in line and "seu" in line
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("api_url", "says"),
    [("", "PREFECT_API_URL is not set"), ("http://127.0.0.1:9/api", "refused the connection")],
)
def test_without_a_prefect_api_the_command_says_where_it_looked(
    tmp_path: Path, api_url: str, says: str
) -> None:
    """In its own process: Prefect reads its settings once, at import."""
    result = subprocess.run(
        [CERTRENEW, "history", "seu", "--config", str(one_certificate(tmp_path))],
        env={**os.environ, "PREFECT_API_URL": api_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    assert says in line and "PREFECT_API_URL" in line
