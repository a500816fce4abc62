"""Runs start as forks of a preloaded process: the flow reaches the fork by name."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import cloudpickle  # type: ignore[import-untyped]
from prefect import flow

from certrenew.deployments.preload import by_name
from certrenew.flows.detect_expiring import detect_expiring_certificates
from certrenew.flows.renew_certificate import renew_certificate


def test_the_served_flows_reach_the_run_as_the_objects_its_imports_made() -> None:
    for served in (renew_certificate, detect_expiring_certificates):
        payload = cloudpickle.dumps(by_name(served))
        assert pickle.loads(payload) is served
        assert len(payload) < 1000  # a name, not the function and its steps by value


def test_a_flow_its_module_does_not_name_is_pickled_as_it_is() -> None:
    @flow(name="made-here")
    def made_here() -> int:
        return 1

    assert by_name(made_here) is made_here
    assert pickle.loads(cloudpickle.dumps(by_name(made_here))).fn() == 1


MAIN = """
import multiprocessing, os, sys
from pathlib import Path

if __name__ == "__mp_main__":
    Path(os.environ["MARKER"]).write_text("the run's process ran this main module again")

if __name__ == "__main__":
    from certrenew.deployments.preload import start_runs_preloaded

    start_runs_preloaded(("json",))
    run = multiprocessing.get_context("forkserver").Process(target=os.getpid)
    run.start()
    run.join()
    sys.exit(run.exitcode)
"""


def test_a_run_does_not_run_the_serving_process_main_module_again(tmp_path: Path) -> None:
    """A fork takes its flow by name: the serving process's main module is not run again.

    multiprocessing would run it in every new run: `certrenew serve` imported its
    command line anew each time, and once a new version was on disk, its code met
    the fork server's older modules and every new run failed at import.
    """
    main = tmp_path / "serving.py"
    main.write_text(MAIN)
    marker = tmp_path / "marker"
    done = subprocess.run(
        [sys.executable, str(main)],
        env={**os.environ, "MARKER": str(marker)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not marker.exists(), marker.read_text()
