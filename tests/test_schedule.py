"""Detection on a schedule, for real: the server's scheduler makes the runs, `serve` runs them.

A real `prefect server start` and a real `python -m certrenew.deployments.serve`
with detection every minute. The scheduler service inserts the deployment's
upcoming runs in bulk; that insert is what SQLAlchemy 2.1 broke on prefect
3.8.8 ("Can't evaluate bulk DML statement"), leaving scheduled deployments
without runs. This test is what says whether the SQLAlchemy pin is needed.

`LocalStack` starts the serving process with its default schedule, so the two
processes are started here, with the environment `LocalStack` builds
(`prefect_env`) plus a short scheduler loop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from certrenew.lab.stack import Process, free_port, prefect_env
from tests.fixtures_renewal import example_config

pytestmark = pytest.mark.prefect

DETECTION_DEPLOYMENT = "detect-expiring-certificates/detect-expiring"
EVERY_MINUTE = "* * * * *"

# The scheduler visits deployments every 60 s (recently updated ones every 5 s);
# every second here, so the runs exist as soon as the deployment is served.
SCHEDULER_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
}

T = TypeVar("T")


@dataclass
class ScheduledStack:
    api_url: str
    server: Process
    runner: Process

    def logs(self) -> str:
        return f"--- server.log\n{self.server.tail(40)}\n--- serve.log\n{self.runner.tail(40)}"

    def wait_until(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """`probe()` once it is truthy; fails with both processes' logs after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in (self.server, self.runner):
                if process.proc.poll() is not None:
                    raise AssertionError(f"{process.log.name} process exited\n{self.logs()}")
            value = probe()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"{what} within {timeout:.0f} s\n{self.logs()}")


@pytest.fixture
def scheduled_stack(tmp_path: Path) -> Iterator[ScheduledStack]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # No certificates: detection scans nothing and completes. Written by hand:
    # `write_inventory(path, [])` leaves `certificates:` empty, which YAML reads as null.
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("certificates: []\n", encoding="utf-8")
    config = example_config(
        tmp_path / "certrenew.toml", inventory=str(inventory), data_dir=str(tmp_path / "data")
    )
    home = tmp_path / "prefect"
    home.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(home, api_url) | SCHEDULER_ENV

    server = Process(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        home / "server.log",
    )
    runner: Process | None = None
    try:
        deadline = time.monotonic() + 120
        while not healthy(api_url):
            assert server.proc.poll() is None, f"server exited at start\n{server.tail()}"
            assert time.monotonic() < deadline, f"server not healthy in 120 s\n{server.tail()}"
            time.sleep(0.5)
        runner = Process(
            [
                *(sys.executable, "-m", "certrenew.deployments.serve"),
                *("--config", str(config), "--detect-cron", EVERY_MINUTE),
            ],
            env,
            home / "serve.log",
        )
        with temporary_settings({PREFECT_API_URL: api_url}):
            yield ScheduledStack(api_url, server, runner)
    finally:
        for process in (runner, server):
            if process:
                process.stop()


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def detection_runs(deployment_id: Any) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])
            ),
            limit=200,
        )


def served_deployment() -> Any:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(DETECTION_DEPLOYMENT)
        except ObjectNotFound:
            return None


@pytest.mark.timeout(420)
def test_the_server_schedules_detection_runs_and_the_serving_process_completes_one(
    scheduled_stack: ScheduledStack,
) -> None:
    stack = scheduled_stack
    deployment = stack.wait_until(
        f"{DETECTION_DEPLOYMENT} was not served", served_deployment, timeout=120
    )
    assert [s.schedule.cron for s in deployment.schedules] == [EVERY_MINUTE]
    assert all(s.active for s in deployment.schedules)

    # Only the scheduler service creates auto-scheduled runs: nothing else here
    # asks for any.
    def scheduled() -> list[Any]:
        runs = [r for r in detection_runs(deployment.id) if r.auto_scheduled]
        return runs if any(r.state and r.state.is_scheduled() for r in runs) else []

    runs = stack.wait_until("the scheduler created no runs", scheduled, timeout=120)
    assert all(r.created_by and r.created_by.type == "SCHEDULE" for r in runs)
    starts = sorted(r.expected_start_time for r in runs)
    assert len(starts) >= 2
    assert all(t.second == 0 and t.microsecond == 0 for t in starts), starts
    assert len(set(starts)) == len(starts), "one run per minute, no duplicates"

    # The first one falls due within a minute; the serving process runs it.
    def finished() -> Any:
        done = [r for r in detection_runs(deployment.id) if r.state and r.state.is_final()]
        return done[0] if done else None

    run = stack.wait_until("no detection run finished", finished, timeout=180)
    assert run.auto_scheduled
    assert run.state.is_completed(), (
        f"{run.name}: {run.state.name} ({run.state.message})\n{stack.logs()}"
    )
