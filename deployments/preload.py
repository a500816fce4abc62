"""Every run `certrenew serve` starts is a fork of a process that has imported Prefect already.

A run's process used to be a new interpreter (`python -m prefect.engine`):
importing Prefect and the flows, then reading the run and its deployment
from the API, cost 2-4 s on a quiet 2-core machine and over 10 s under load,
for every new run and every resume after the warm window. Here the runs go
through Prefect's in-process path (`Runner.add_flow`: the flow object is
handed to `run_flow_in_subprocess`), and that function's processes are taken
from a `forkserver` whose server imported Prefect and our flow modules once,
at `certrenew serve`'s start: a run starts in about 10 ms.

What the run's process needs from the serving process still reaches it:
`run_flow_in_subprocess` sends its environment (settings, heartbeat
frequency, deployment name) inside the pickled call and the control
channel's port and token as the call's arguments, so nothing depends on the
environment the fork server was started with. The fork server holds no
threads (its imports start none), one process for all runs; a suspended run
still holds none.

The run's process is the fork server's child, not the serving process's, and
its /proc environment is the fork server's: its pid is written to the run's
`infrastructure_pid` (as Prefect's workers do), so people and tests find it.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import multiprocessing.forkserver
import socket
import sys
import threading
from collections.abc import Callable
from multiprocessing import spawn
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import Flow

log = logging.getLogger("certrenew.serve")

# What every run imports before its first step: imported once, in the fork server.
PRELOADED = (
    "certrenew.flows.renew_certificate",
    "certrenew.flows.detect_expiring",
    "certrenew.flows.resume_crashed",
    "certrenew.deployments.run_process",
)


def start_runs_preloaded(modules: tuple[str, ...] = PRELOADED) -> None:
    """From now on, this process's in-process runs start as forks of a preloaded server.

    Call before the runner starts: the fork server is started here, while
    the serving process is still starting, so the first run does not wait
    for its imports.
    """
    from prefect import flow_engine
    from prefect.runner import _starter_direct

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(modules))
    multiprocessing.forkserver.ensure_running()
    # `run_flow_in_subprocess` asks `multiprocessing.get_context("spawn")` for its process;
    # it is the one line to change, so the module it reads `multiprocessing` from answers
    # with the fork server instead of copying the function.
    flow_engine.multiprocessing = SimpleNamespace(  # type: ignore[assignment]
        get_context=lambda method=None: context, context=multiprocessing.context
    )
    # The starter Prefect documents as the one to patch ("patch the module to override").
    _starter_direct.run_flow_in_subprocess = run_flow_in_fork  # type: ignore[assignment]
    # A run takes its flow by name from the preloaded modules and needs nothing from this
    # process's main module, which multiprocessing would run again in every fork: the
    # command line imported anew per run and, once a new version was on disk, its code
    # meeting the fork server's older modules (every new run failed at import).
    spawn.get_preparation_data = _without_main(spawn.get_preparation_data)  # type: ignore[assignment]


def _without_main(prepare: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    def prepared(name: str) -> dict[str, Any]:
        data = prepare(name)
        data.pop("init_main_from_name", None)
        data.pop("init_main_from_path", None)
        return data

    return prepared


def run_flow_in_fork(
    flow: Flow[..., Any], flow_run: FlowRun | None = None, **kwargs: Any
) -> BaseProcess:
    """Prefect's `run_flow_in_subprocess`, on the fork server; the pid recorded on the run."""
    from prefect.flow_engine import run_flow_in_subprocess

    process = run_flow_in_subprocess(by_name(flow), flow_run=flow_run, **kwargs)
    if flow_run is not None and process.pid is not None:
        # Off the runner's event loop, which called us: one API call, not on the run's path.
        threading.Thread(target=record_process, args=(flow_run, process.pid), daemon=True).start()
    return process


def by_name(flow: Flow[..., Any]) -> Flow[..., Any]:
    """`flow`, pickled as its module and name, so the run takes the object the fork server made.

    Pickled as it is, a flow object carries its function by value (the
    module's attribute is the flow, not the function), with every step the
    function names: slow, and our steps hold weak references, which do not
    pickle at all. A flow that is not its module's attribute is left as it is.
    """
    module, name = flow.fn.__module__, flow.fn.__qualname__
    if getattr(sys.modules.get(module), name, None) is not flow:
        return flow
    named = copy.copy(flow)
    # Looked up on the instance by pickle: this copy alone pickles by name.
    named.__reduce_ex__ = lambda _protocol: (getattr, (sys.modules[module], name))
    return named


def record_process(flow_run: FlowRun, pid: int) -> None:
    """Write `host:pid` to the run's `infrastructure_pid`; a failure is only logged."""
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, infrastructure_pid=f"{socket.gethostname()}:{pid}")
    except Exception as exc:
        log.warning("the process of run %s (pid %d) not recorded: %s", flow_run.id, pid, exc)
