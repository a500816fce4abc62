"""Scale-out as the README describes it: a Prefect server on PostgreSQL, process workers.

A throw-away PostgreSQL cluster on loopback holds the server's database; the
project's `prefect.yaml` deploys both flows to a process work pool; two
workers (two "machines": each its own Prefect home) share one result storage
folder. Detection runs on a worker, its event starts the renewal, and the
renewal goes to retirement with its runs started by both workers: worker A
runs it until it waits for the CA choice, then A is stopped (maintenance) and
worker B carries on from the results A stored. People answer through the API.

The run waits in its warm window (certrenew.tasks.waiting) when A stops, and
a Prefect process worker that stops kills the processes of its runs: the run
is left Paused with no process. As the README's worker set-up has it, the
recovery automations (`certrenew recovery`) and the workers' heartbeats find
it silent, mark it Crashed and schedule it again, and B asks the question
again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.lab.postgres import PostgresCluster
from certrenew.lab.stack import LocalStack, Process
from certrenew.tasks.context import RENEWAL_FLOW
from certrenew.tasks.forms import Question, open_question, pause_key
from certrenew.tasks.guard import created_by
from tests.fixtures_renewal import RenewalLab, RenewalRun, served_renewal_lab
from tests.test_recovery import state_names, wait_for

pytestmark = pytest.mark.prefect

PROJECT = Path(__file__).resolve().parent.parent
HEARTBEAT = 30  # the shortest Prefect accepts; a silent run is crashed after 3 of them
POOL = "certrenew"


class Workers:
    def __init__(self, stack: LocalStack, config: Path, shared: Path) -> None:
        self.stack, self.config, self.shared = stack, config, shared
        self.running: dict[str, Process] = {}

    def start(self, name: str) -> Process:
        home = self.stack.home.parent / name
        env = self.stack.env | {
            "PREFECT_HOME": str(home),
            "PREFECT_LOCAL_STORAGE_PATH": str(self.shared),
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "CERTRENEW_CONFIG": str(self.config),
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT),
        }
        args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL]
        worker = Process([*args, "--name", name, "--type", "process"], env, home / "worker.log")
        self.running[name] = worker
        return worker

    def stop(self, name: str) -> None:
        self.running[name].stop()

    def ran(self, name: str, run_id: object) -> bool:
        log = self.stack.home.parent / name / "worker.log"
        return str(run_id) in log.read_text(errors="replace")


def prefect(stack: LocalStack, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        env=stack.env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def scaled_out(tmp_path: Path) -> Iterator[tuple[RenewalLab, Workers]]:
    with (
        PostgresCluster() as database,
        served_renewal_lab(
            tmp_path,
            serving=False,
            server_env={"PREFECT_SERVER_DATABASE_CONNECTION_URL": database.url},
            recovery={"heartbeat_seconds": HEARTBEAT, "missed_heartbeats": 3},
        ) as lab,
    ):
        assert lab.stack is not None
        workers = Workers(lab.stack, lab.config, tmp_path / "shared-results")
        prefect(lab.stack, "work-pool", "create", POOL, "--type", "process")
        prefect(lab.stack, "deploy", "--all")
        recovery = CliRunner().invoke(app, ["recovery", "--config", str(lab.config)])
        assert recovery.exit_code == 0, recovery.output
        try:
            yield lab, workers
        finally:
            for worker in workers.running.values():  # before their server
                worker.stop()


def the_renewal_run(name: str, timeout: float = 240) -> RenewalRun:
    """The renewal run the detection's event started for certificate `name`."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[RENEWAL_FLOW]))
            )
            mine = [run for run in runs if run.parameters.get("name") == name]
            if mine:
                return RenewalRun(mine[0].id)
            time.sleep(1)
    raise AssertionError(f"no renewal run of {name} was started by the detection's event")


def started_by_the_guard(run: RenewalRun) -> bool:
    """The guard names the request that created a run in the run's context."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return created_by(client.read_flow_run(run.id)) != ""


def test_a_renewal_from_event_to_retirement_on_two_workers_and_postgresql(scaled_out) -> None:
    from prefect.deployments import run_deployment

    lab, workers = scaled_out
    _domain, _server, rid, people = lab.serve_renewal("scaled")
    tracker = lab.tracker()

    workers.start("worker-a")
    detection = cast(
        Any,
        run_deployment("detect-expiring-certificates/detect-expiring", parameters={}, timeout=0),
    )
    run = the_renewal_run("scaled")
    assert started_by_the_guard(run), "the event reached the renewal through the guard"
    run.answer_each(people, rid, pause_key(Question.CSR, 1))
    run.wait_paused(Question.CA_CHOICE)
    assert run.state().name == "Paused", "worker A's process waits for the answer"

    # Worker A goes down for maintenance, killing the waiting process; worker B carries
    # on from A's stored results once the recovery has found the run silent.
    workers.stop("worker-a")
    workers.start("worker-b")
    wait_for(
        "the silent run crashed, scheduled again and asking again on worker B",
        lambda: (
            ("Crashed", "") in state_names(run)
            and open_question(run.id) is not None
            and workers.ran("worker-b", run.id)
        ),
        timeout=HEARTBEAT * 3 + 240,
    )
    run.answer_each(
        people,
        rid,
        Question.CA_CHOICE,
        Question.CA_REQUEST,
        pause_key(Question.CERTIFICATE, 1),
        pause_key(Question.INSTALL, 1),
    )
    workers.start("worker-a")  # back: both serve the last step
    run.answer_each(people, rid, Question.RETIRE)
    final = run.wait_final()
    assert final.is_completed(), final

    assert workers.ran("worker-a", detection.id) and workers.ran("worker-a", run.id)
    assert workers.ran("worker-b", run.id)
    assert any(workers.shared.rglob("*")), "the steps' results are in the shared storage"
    for kind in ("csr", "owner", "install"):
        [ticket] = tracker.find_tickets(f"{rid}-{kind}")
        assert tracker.get_ticket(ticket.key).status == "Done", kind
    assert os.path.exists(lab.settings.outbox_path() / f"{rid}-revoked.eml")
