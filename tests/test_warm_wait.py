"""A question keeps the run's process for a short window, then lets it go.

A Prefect server of its own and a real `certrenew serve` process. Answered
within the window, the run goes on in the same process; not answered within
it, the process suspends the run under the same question and exits, and the
run resumes through the API the UI's Resume form uses, in a new process. A
process killed during the window leaves a run that the recovery carries on.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from certrenew.deployments.demo import DEMO_TIMINGS
from certrenew.lab.stack import LocalStack
from certrenew.tasks.forms import Question, pause_key
from certrenew.tasks.waiting import UNREACHABLE_SECONDS
from tests.fixtures_renewal import (
    RenewalLab,
    RenewalRun,
    alive,
    example_config,
    served_renewal_lab,
)
from tests.test_recovery import HEARTBEAT, state_names

pytestmark = pytest.mark.prefect

CSR = pause_key(Question.CSR, 1)
LONG = 3600  # longer than any test: every answer comes within it
SHORT = 1  # over before anyone answers: the process lets the run go


@pytest.fixture(scope="module")
def warm_lab(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RenewalLab, Path, Path]]:
    """The lab with a long window; configurations with a short one, and with one run at most."""
    root = tmp_path_factory.mktemp("warm")
    with served_renewal_lab(root, renewal=DEMO_TIMINGS | {"warm_wait_seconds": LONG}) as lab:
        short = example_config(
            root / "short.toml",
            inventory=str(lab.inventory),
            data_dir=str(root / "data"),
            renewal=DEMO_TIMINGS | {"warm_wait_seconds": SHORT},
        )
        capped = example_config(
            root / "capped.toml",
            inventory=str(lab.inventory),
            data_dir=str(root / "data"),
            renewal=DEMO_TIMINGS | {"warm_wait_seconds": LONG, "warm_wait_runs": 1},
        )
        yield lab, short, capped


def run_processes(run: RenewalRun) -> set[int]:
    """The processes running `run` (a fork of the serving process's fork server)."""
    pid = run.process()
    return {pid} if pid is not None else set()


def until(what: str, check: object, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.5)
    raise AssertionError(f"never happened: {what}")


def heartbeats_since(run: RenewalRun, moment: datetime) -> int:
    """Heartbeat events of the run the server received after `moment`."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        page = client.request(
            "POST",
            "/events/filter",
            json={
                "filter": {
                    "event": {"name": ["prefect.flow-run.heartbeat"]},
                    "resource": {"id": [f"prefect.flow-run.{run.id}"]},
                    "occurred": {"since": moment.isoformat()},
                },
                "limit": 10,
            },
        )
    return int(page.json()["total"])


def pauses(run: RenewalRun) -> list[tuple[str, str]]:
    """(state name, question) of every wait of the run, in order."""
    return [(name, key) for name, key in state_names(run) if key]


def test_an_answer_within_the_window_goes_on_in_the_same_process(warm_lab) -> None:
    lab, _, _ = warm_lab
    _domain, _server, rid, people = lab.serve_renewal("warm-answer")
    run = lab.start("warm-answer")

    run.wait_paused(CSR)
    assert run.state().name == "Paused"
    [process] = run_processes(run)
    run.resume(**people.answer(CSR, rid))
    run.wait_paused(Question.CA_CHOICE)
    assert run_processes(run) == {process}, "the answer went to another process"
    assert pauses(run) == [("Paused", CSR), ("Paused", Question.CA_CHOICE)]
    # The silent-run automation expects heartbeats again once the run has paused.
    asked = run.state().timestamp
    until("a heartbeat after the pause", lambda: heartbeats_since(run, asked) > 0)

    # Killed while it waits: the serving process marks the run Crashed, the recovery
    # schedules it again, and the new process asks the same question again.
    os.kill(process, signal.SIGKILL)
    until("the run crashed", lambda: "Crashed" in [name for name, _ in state_names(run)])
    until("the recovery scheduled it again", lambda: not run.state().is_final())
    run.wait_paused(Question.CA_CHOICE)
    run.resume(**people.answer(Question.CA_CHOICE, rid))
    run.wait_paused(Question.CA_REQUEST)
    assert process not in run_processes(run)


def test_no_answer_within_the_window_lets_the_process_go(warm_lab) -> None:
    lab, short, _ = warm_lab
    _domain, _server, rid, people = lab.serve_renewal("warm-timeout")
    run = lab.start("warm-timeout", config=str(short))

    run.wait_paused(CSR)
    until("the run's process exited", lambda: not run_processes(run))
    state = run.state()
    assert state.name == "Suspended" and state.state_details.pause_key == CSR
    assert pauses(run) == [("Paused", CSR), ("Suspended", CSR)]

    run.resume(**people.answer(CSR, rid))  # as the UI's Resume form does
    run.wait_paused(Question.CA_CHOICE)
    assert run_processes(run), "the run did not start again in a new process"
    assert "Crashed" not in [name for name, _ in state_names(run)]
    assert pauses(run)[2] == ("Paused", Question.CA_CHOICE)  # its window is over soon too


def test_a_question_asked_while_enough_runs_wait_so_suspends_at_once(warm_lab) -> None:
    lab, _, capped = warm_lab
    lab.serve_certificate("warm-first")
    lab.serve_certificate("warm-capped")
    first = lab.start("warm-first")
    first.wait_paused(CSR)
    assert first.state().name == "Paused"

    capped_run = lab.start("warm-capped", config=str(capped))  # at most 1 run waits so
    capped_run.wait_paused(CSR)
    until("the capped run's process exited", lambda: not run_processes(capped_run))
    assert pauses(capped_run) == [("Suspended", CSR)]
    assert first.state().name == "Paused"


def test_a_process_waiting_while_its_prefect_server_is_gone_exits_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """The server stops while the run waits warm: its process gives up instead of waiting
    out the window, proposing nothing; once the server is back the run, still Paused, is
    marked Crashed, and started again it asks the same question and goes on.

    Started again by Retry, as an operator would: after a server restart Prefect holds
    the Crashed event for up to 15 minutes (its in-memory event ordering lost the
    Paused event before it), and only then does the recovery automation see it.
    """
    from prefect import get_client
    from prefect.states import Scheduled

    with served_renewal_lab(
        tmp_path,
        renewal=DEMO_TIMINGS | {"warm_wait_seconds": LONG},
        recovery={"heartbeat_seconds": HEARTBEAT, "missed_heartbeats": 3},
    ) as lab:
        stack = lab.stack
        assert stack is not None and stack.server is not None and stack.runner is not None
        _domain, _server, rid, people = lab.serve_renewal("warm-outage")
        run = lab.start("warm-outage")
        run.wait_paused(CSR)
        assert run.state().name == "Paused"
        [process] = run_processes(run)

        stack.server.stop()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{stack.api_url}/health", timeout=5)
        until(
            "the waiting process gave up",
            lambda: not alive(process),  # the run's recorded pid: the API is away
            # Far within the window; Prefect's own retries took 2.4 minutes to end it.
            timeout=UNREACHABLE_SECONDS + 45,
        )
        assert stack.runner.proc.poll() is None, "`certrenew serve` waits for its server"

        stack.start_server()
        until(
            "the run marked Crashed", lambda: run.state().is_crashed(), timeout=HEARTBEAT * 3 + 60
        )
        names = [name for name, _ in state_names(run)]
        assert names[-2:] == ["Paused", "Crashed"], names  # nothing else was proposed

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Scheduled(name="AwaitingRetry"), force=True)
        run.wait_paused(CSR)
        assert pauses(run) == [("Paused", CSR), ("Paused", CSR)], "asked once, then again"
        run.resume(**people.answer(CSR, rid))
        run.wait_paused(Question.CA_CHOICE)


def test_a_run_cancelled_while_its_process_waits_ends_and_lets_the_process_go(warm_lab) -> None:
    """Cancel, as the UI's Cancel does: the serving process stops the run's process."""
    from prefect import get_client
    from prefect.states import Cancelling

    lab, _, _ = warm_lab
    lab.serve_certificate("warm-cancel")
    run = lab.start("warm-cancel")
    run.wait_paused(CSR)
    [process] = run_processes(run)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Cancelling(), force=True)
    until("the run was cancelled", lambda: run.state().is_cancelled(), timeout=120)
    until(f"its process {process} exited", lambda: not run_processes(run), timeout=60)


def ctrl_c(stack: LocalStack) -> None:
    """Ctrl-C in the terminal `certrenew serve` runs in: SIGINT to its whole process group."""
    assert stack.runner is not None
    os.killpg(stack.runner.proc.pid, signal.SIGINT)
    stack.runner.proc.wait(timeout=60)
    stack.runner.stop()


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda stack: stack.runner.stop(), id="SIGTERM"),
        pytest.param(ctrl_c, id="Ctrl-C"),
    ],
)
def test_a_serving_process_that_stops_suspends_its_warm_waits_and_a_restart_goes_on(
    tmp_path: Path, stop: Callable[[LocalStack], None]
) -> None:
    """`certrenew serve` stopped while a run waits warm: SIGTERM (as systemd stops it), or
    Ctrl-C in its terminal, which the terminal sends to every process of the group.

    Prefect's runner cancels every run it holds when it stops: a run waiting for its
    answer would end Cancelled, and its question with it. It is suspended under the
    same question instead, its process gone; after a restart the answer goes on.
    """
    with served_renewal_lab(tmp_path, renewal=DEMO_TIMINGS | {"warm_wait_seconds": LONG}) as lab:
        stack = lab.stack
        assert stack is not None and stack.runner is not None
        _domain, _server, rid, people = lab.serve_renewal("warm-restart")
        run = lab.start("warm-restart")
        run.wait_paused(CSR)
        [process] = run_processes(run)

        stop(stack)
        assert stack.runner.proc.returncode is not None
        assert run.state().name == "Suspended", state_names(run)
        assert not alive(process)
        assert pauses(run)[-1] == ("Suspended", CSR), "suspended under the same question"

        stack.serve()
        run.resume(**people.answer(CSR, rid))
        run.wait_paused(Question.CA_CHOICE)
