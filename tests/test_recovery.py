"""A renewal whose process is killed carries on by itself, opening nothing twice.

A Prefect server of its own and a real `certrenew serve` process: the test
kills (SIGKILL) the renewal run's process in the middle of a step, and later
the serving process together with it, then starts `certrenew serve` again, as
a machine restart would. Nobody touches the run between: the recovery
automations `certrenew serve` installed find it crashed (at once, or from its
missing heartbeats) and schedule it again, and it replays its stored steps and
answers. People answer the forms through the API as everywhere else.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import pytest
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.flows.resume_crashed import RESUME_FLOW
from certrenew.lab.stack import LocalStack
from certrenew.renewal import renewal_id
from certrenew.tasks.context import RENEWAL_FLOW
from certrenew.tasks.crashes import CRASH_LOOP
from certrenew.tasks.forms import Question, pause_key
from tests.fixtures_renewal import RenewalLab, RenewalRun, served_renewal_lab, served_serial

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

pytestmark = pytest.mark.prefect

HEARTBEAT = 30  # the shortest Prefect accepts; a silent run is crashed after 3 of them


@contextmanager
def killable_lab(root: Path, **recovery: int) -> Iterator[tuple[RenewalLab, LocalStack]]:
    """A served lab of its own server; steps 1 and 4 poll their ticket for a long while,
    so a test can kill the run there."""
    with served_renewal_lab(
        root,
        renewal={"attachment_poll_minutes": 30, "attachment_poll_seconds": 1},
        recovery={"heartbeat_seconds": HEARTBEAT, "missed_heartbeats": 3, **recovery},
    ) as lab:
        assert lab.stack is not None
        yield lab, lab.stack


@pytest.fixture
def recovery_lab(tmp_path: Path) -> Iterator[tuple[RenewalLab, LocalStack]]:
    with killable_lab(tmp_path) as lab:
        yield lab


def running_step(run: RenewalRun, step: str, seen: set[UUID], timeout: float = 240) -> UUID:
    """Wait until a new task run of `step` is running in the run; returns its id."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for task_run in client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            ):
                running = task_run.state is not None and task_run.state.is_running()
                if running and task_run.name.startswith(step) and task_run.id not in seen:
                    seen.add(task_run.id)
                    return task_run.id
            time.sleep(0.5)
    raise AssertionError(f"step {step} never ran again; run state {run.state()}")


def flow_run_process(serving_pid: int, run: RenewalRun) -> int:
    """The process running `run`: a fork of the serving process's fork server."""
    pid = run.process()
    assert pid is not None, f"no process runs {run.id}"
    fork_server = parent_of(pid)
    assert b"forkserver" in Path(f"/proc/{fork_server}/cmdline").read_bytes()
    assert parent_of(fork_server) == serving_pid, f"{pid} is not under {serving_pid}"
    return pid


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def state_names(run: RenewalRun) -> list[tuple[str, str]]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        states = sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
    return [(s.name or "", s.state_details.pause_key or "") for s in states]


def wait_for(condition: str, check: object, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(1)
    raise AssertionError(f"never happened: {condition}")


def test_a_killed_renewal_resumes_by_itself_and_opens_no_ticket_twice(recovery_lab) -> None:
    lab, stack = recovery_lab
    domain, _server, rid, people = lab.serve_renewal("crash")
    tracker = lab.tracker()
    run = lab.start("crash")
    seen: set[UUID] = set()

    # 1. The run's own process dies while step 1 polls its ticket; `serve` lives on.
    running_step(run, "collect-csr-and-key", seen)
    assert stack.runner
    os.kill(flow_run_process(stack.runner.proc.pid, run), signal.SIGKILL)
    running_step(run, "collect-csr-and-key", seen)  # ...and it runs again, by itself
    assert ("Crashed", "") in state_names(run)
    [csr_ticket] = tracker.find_tickets(f"{rid}-csr")
    people.attach_csr_and_key(tracker, csr_ticket.key)
    run.wait_paused(Question.CA_CHOICE)
    run.resume(**people.answer(Question.CA_CHOICE, rid))
    run.wait_paused(Question.CA_REQUEST)
    run.resume(**people.answer(Question.CA_REQUEST, rid))

    # 2. The machine "restarts": the serving process dies with the run's process while
    # step 4 polls. Missing heartbeats tell the run crashed; it waits to be resumed (the
    # recovery's small flow waits for a serving process too).
    running_step(run, "collect-certificate", seen)
    os.killpg(stack.runner.proc.pid, signal.SIGKILL)
    stack.runner.proc.wait()
    wait_for(
        "the silent run marked Crashed",
        lambda: [name for name, _ in state_names(run)].count("Crashed") == 2,
        timeout=HEARTBEAT * 3 + 120,
    )
    shown = CliRunner().invoke(app, ["status", "--json", "--config", str(lab.config)])
    assert shown.exit_code == 0, shown.output
    [standing] = [r for r in json.loads(shown.output) if r["certificate"] == "crash"]
    assert standing["state"].startswith("crashed, resuming"), standing
    assert standing["renewal"] == rid and standing["step"].startswith("collect-certificate")

    stack.serve()  # `certrenew serve` starts again after the restart
    running_step(run, "collect-certificate", seen)
    tracker.add_attachment(csr_ticket.key, f"{domain}.crt", people.sign())
    run.answer_each(people, rid, pause_key(Question.INSTALL, 1), Question.RETIRE)
    assert run.wait_final().is_completed()

    # Exactly one ticket of each kind, each step commented once, each question asked once.
    for kind in ("csr", "owner", "install"):
        assert len(tracker.find_tickets(f"{rid}-{kind}")) == 1, kind
    for ticket in tracker.find_tickets(rid):
        markers = [
            line.split()[0]
            for comment in tracker.comments(ticket.key)
            for line in comment.splitlines()
            if line.startswith("[certrenew:")
        ]
        assert len(markers) == len(set(markers)), (ticket.key, markers)
    asked = [key for name, key in state_names(run) if name == "Suspended"]
    assert sorted(asked) == sorted(set(asked)), asked
    assert [name for name, _ in state_names(run)].count("Crashed") == 2


def recovery_runs_for(run: RenewalRun) -> list[FlowRun]:
    """The recovery's small flow runs started for `run`'s crashes."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[RESUME_FLOW]))
        )
    return [r for r in runs if str(r.parameters.get("crashed_run", "")).endswith(str(run.id))]


def test_a_crash_reported_after_the_run_went_on_leaves_the_run_alone(recovery_lab) -> None:
    """A Crashed event that comes when the run is no longer in that crash changes nothing.

    It comes so when a person pressed Retry at once and the recovery's reaction
    came second, or after a server restart, when Prefect holds the event for up
    to 15 minutes. The run here is in step 1, in its process; scheduled again,
    it would get a second process beside the first.
    """
    from uuid import uuid4

    import httpx
    from prefect.events import Event
    from prefect.settings import PREFECT_API_URL

    lab, _ = recovery_lab
    lab.serve_certificate("late-crash")
    run = lab.start("late-crash")
    running_step(run, "collect-csr-and-key", set())
    before = state_names(run)
    crashed = Event(
        event="prefect.flow-run.Crashed",
        id=uuid4(),  # a state the run is not in (any more)
        resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"},
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{uuid4()}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": RENEWAL_FLOW,
            }
        ],
    )
    # Through the server's events endpoint, which answers once it has taken the event
    # (the client's background worker may still hold it when the test looks).
    sent = httpx.post(
        f"{PREFECT_API_URL.value()}/events", json=[crashed.model_dump(mode="json")], timeout=30
    )
    assert sent.status_code == 204, sent.text

    wait_for(
        "the recovery looked at the run",
        lambda: any(r.state and r.state.is_final() for r in recovery_runs_for(run)),
        timeout=240,
    )
    [looked] = recovery_runs_for(run)
    assert looked.state is not None and looked.state.is_completed(), looked.state
    assert run.state().is_running()
    assert state_names(run) == before, "the run's states are as they were"


def test_a_renewal_that_keeps_crashing_waits_for_a_person(tmp_path: Path) -> None:
    """Beyond `[recovery] max_retries` crashes in the window, the run is not carried on for
    ever: it waits for a person, with the reason in its form, on its service-owner ticket
    and in `certrenew status`; submitting the form lets it go on."""
    with killable_lab(tmp_path, max_retries=1) as (lab, stack):
        domain, _ = lab.serve_certificate("loop")
        rid = renewal_id(domain, served_serial(lab, "loop"))
        run = lab.start("loop")
        seen: set[UUID] = set()
        assert stack.runner
        for _ in range(2):  # the first crash is retried; the second is one beyond the bound
            running_step(run, "collect-csr-and-key", seen)
            os.kill(flow_run_process(stack.runner.proc.pid, run), signal.SIGKILL)

        wait_for(
            "the run crashed twice and scheduled again",
            lambda: (
                [name for name, _ in state_names(run)].count("Crashed") == 2
                and not run.state().is_crashed()
            ),
        )
        crash_loop = pause_key(Question.WAIT, CRASH_LOOP, 2)
        assert "crashed 2 times in the last 24 hours" in run.wait_paused(crash_loop)
        shown = CliRunner().invoke(app, ["status", "--json", "--config", str(lab.config)])
        assert shown.exit_code == 0, shown.output
        [standing] = [r for r in json.loads(shown.output) if r["certificate"] == "loop"]
        assert "crashed 2 times" in standing["state"], standing
        tracker = lab.tracker()
        [owner] = tracker.find_tickets(f"{rid}-owner")
        said = [c for c in tracker.comments(owner.key) if f"[certrenew:{CRASH_LOOP}-2]" in c]
        assert len(said) == 1 and "2 vegades" in said[0], said

        run.resume(answered_by="anna")  # the cause is fixed: it goes on where it crashed
        running_step(run, "collect-csr-and-key", seen)
        assert [name for name, _ in state_names(run)].count("Crashed") == 2


def test_recovery_for_workers_says_to_deploy_its_flow_first(tmp_path: Path) -> None:
    """`certrenew recovery` before `prefect deploy --all`: the automations would start a
    flow that is not there, so none is made, the ones installed before stay, and the
    message says what to run."""
    from uuid import uuid4

    from prefect import get_client

    from certrenew.deployments.recovery import RESUME_CRASHED, SILENT_RUN, install_recovery

    with served_renewal_lab(tmp_path, serving=False) as lab:
        before = install_recovery(lab.settings.recovery, uuid4())  # an earlier install
        said = CliRunner().invoke(app, ["recovery", "--config", str(lab.config)])
        assert said.exit_code != 0
        assert "resume-crashed-renewal" in said.output
        assert "prefect --no-prompt deploy --all" in " ".join(said.output.split())
        with get_client(sync_client=True) as client:
            kept = [
                name
                for name in (SILENT_RUN, RESUME_CRASHED)
                if client.read_automations_by_name(name)
            ]
        assert kept == before == [SILENT_RUN, RESUME_CRASHED]
