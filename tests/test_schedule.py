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

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from certrenew.lab.inventory import write_inventory
from certrenew.lab.stack import LocalStack
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


def logs(stack: LocalStack) -> str:
    assert stack.server and stack.runner
    return f"--- server.log\n{stack.server.tail(40)}\n--- serve.log\n{stack.runner.tail(40)}"


def wait_until(stack: LocalStack, what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """`probe()` once it is truthy; fails with both processes' logs after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in (stack.server, stack.runner):
            if process and process.proc.poll() is not None:
                raise AssertionError(f"{process.log.name} process exited\n{logs(stack)}")
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{logs(stack)}")


@pytest.fixture
def scheduled_stack(tmp_path: Path) -> Iterator[LocalStack]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # No certificates: detection scans nothing and completes.
    inventory = tmp_path / "inventory.yaml"
    write_inventory(inventory, [])
    config = example_config(
        tmp_path / "certrenew.toml", inventory=str(inventory), data_dir=str(tmp_path / "data")
    )
    stack = LocalStack(tmp_path / "prefect", config, serve_args=("--detect-cron", EVERY_MINUTE))
    stack.env.update(SCHEDULER_ENV)
    with stack, temporary_settings({PREFECT_API_URL: stack.api_url}):
        yield stack


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
    scheduled_stack: LocalStack,
) -> None:
    stack = scheduled_stack
    deployment = wait_until(
        stack,
        f"{DETECTION_DEPLOYMENT} was not served", served_deployment, timeout=120
    )
    assert [s.schedule.cron for s in deployment.schedules] == [EVERY_MINUTE]
    assert all(s.active for s in deployment.schedules)

    # Only the scheduler service creates auto-scheduled runs: nothing else here
    # asks for any.
    def scheduled() -> list[Any]:
        runs = [r for r in detection_runs(deployment.id) if r.auto_scheduled]
        return runs if any(r.state and r.state.is_scheduled() for r in runs) else []

    runs = wait_until(stack, "the scheduler created no runs", scheduled, timeout=120)
    assert all(r.created_by and r.created_by.type == "SCHEDULE" for r in runs)
    starts = sorted(r.expected_start_time for r in runs)
    assert len(starts) >= 2
    assert all(t.second == 0 and t.microsecond == 0 for t in starts), starts
    assert len(set(starts)) == len(starts), "one run per minute, no duplicates"

    # The first one falls due within a minute; the serving process runs it.
    def finished() -> Any:
        done = [r for r in detection_runs(deployment.id) if r.state and r.state.is_final()]
        return done[0] if done else None

    run = wait_until(stack, "no detection run finished", finished, timeout=180)
    assert run.auto_scheduled
    assert run.state.is_completed(), (
        f"{run.name}: {run.state.name} ({run.state.message})\n{logs(stack)}"
    )
