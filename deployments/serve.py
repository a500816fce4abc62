"""Serve the renewal flow as a deployment so its human steps can suspend.

A suspended run holds no process: when a person resumes it, this serving
process starts it again. Renewals start from `certrenew renew NAME`, or by
themselves from the detection flow's `certificate.expiring` events, which
this process hears (certrenew.deployments.listen); both go through the guard
that keeps one renewal per certificate (certrenew.tasks.guard).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from prefect.exceptions import TerminationSignal
from prefect.runner import Runner

from certrenew.config import CONFIG_ENV, Settings, load_settings
from certrenew.deployments.intake import HttpPort, Intake, intake_app
from certrenew.deployments.listen import start_listening
from certrenew.deployments.metrics import Metrics, start_probing
from certrenew.deployments.outage_retry import start_retrying
from certrenew.deployments.preload import start_runs_preloaded
from certrenew.deployments.recovery import install_recovery
from certrenew.flows.detect_expiring import detect_expiring_certificates
from certrenew.flows.renew_certificate import renew_certificate
from certrenew.flows.resume_crashed import RESUME_FLOW, resume_crashed_renewal
from certrenew.tasks.guard import unfinished_renewal_runs
from certrenew.tasks.prefect_api import require_prefect_api
from certrenew.tasks.waiting import LEAVE_SIGNAL

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger("certrenew.serve")

# Run processes at once, by default. Each is a Python process with Prefect loaded (about
# 100 MiB); Prefect's `serve` sets none, so a mass resume would start them all together.
PROCESS_LIMIT = 10


# How long a stopping `certrenew serve` gives its warm waits to suspend their runs.
LEAVE_PATIENCE_SECONDS = 10.0


class _Runner(Runner):
    """Prefect's runner, whose stop lets runs waiting warm suspend before it cancels the rest.

    Prefect's runner cancels every run it holds when it stops (SIGTERM): a run
    waiting in its warm window would end Cancelled, and its question with it.
    Those runs are told to leave their window (certrenew.tasks.waiting); each
    suspends under its question and its process exits, so a restart keeps the
    form and the answer goes on. Runs in the middle of a step are cancelled as
    before.
    """

    async def cancel_all(self) -> None:
        await self._suspend_warm_waits()
        await super().cancel_all()

    async def _suspend_warm_waits(self) -> None:
        tracked = self._process_manager
        waiting = []
        for run_id in tracked.flow_run_ids():
            handle = tracked.get(run_id)
            try:
                state = (await self._client.read_flow_run(run_id)).state
            except Exception as exc:  # the API is away: nothing can be suspended
                log.warning("could not read run %s before stopping: %s", run_id, exc)
                return
            if handle is not None and handle.pid and state is not None and state.is_paused():
                with suppress(ProcessLookupError):
                    os.kill(handle.pid, LEAVE_SIGNAL)
                waiting.append(run_id)
        deadline = asyncio.get_running_loop().time() + LEAVE_PATIENCE_SECONDS
        while any(tracked.get(run_id) for run_id in waiting):  # its process ended
            if asyncio.get_running_loop().time() > deadline:
                log.warning("runs still waiting after %.0f s are cancelled", LEAVE_PATIENCE_SECONDS)
                return
            await asyncio.sleep(0.2)


async def serve_flows(
    settings: Settings, config: str | None, cron: str, poll_seconds: float, limit: int | None
) -> None:
    """The renewal (started only through the guard), the detection and the recovery's
    small flow, run by this process; the recovery installed once its flow is deployed.

    Given as flow objects (`add_flow`), not deployments to load: a run starts
    as a fork of the preloaded fork server (certrenew.deployments.preload).
    """
    # 0 would read as "not given" (Prefect's default, 10 s).
    runner = _Runner(query_seconds=max(0.1, poll_seconds), limit=limit)
    await runner.aadd_flow(
        renew_certificate,
        name="renew-certificate",
        parameters={"config": config},
        description="The certificate renewal runbook, steps 0-8.",
    )
    await runner.aadd_flow(
        detect_expiring_certificates,
        name="detect-expiring",
        parameters={"config_path": config},
        cron=cron,
        description="Scan the inventory; announce certificates due for renewal.",
    )
    resume = await runner.aadd_flow(
        resume_crashed_renewal,
        name=RESUME_FLOW,
        description="Schedule a crashed renewal run again, unless it left that crash already.",
    )
    await asyncio.to_thread(install_recovery, settings.recovery, resume)
    # Ctrl-C stops it as SIGTERM does: runs waiting warm are suspended, the rest
    # cancelled. The terminal sends SIGINT to the runs too, which ignore it
    # (certrenew.deployments.run_process); Prefect's runner would wait for them.
    signal.signal(signal.SIGINT, runner.handle_sigterm)
    await runner.start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=os.environ.get(CONFIG_ENV))
    parser.add_argument(
        "--detect-cron", default="0 7 * * *", help="when detection runs (cron, server time zone)"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=float(os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", "0.5")),
        help="how often runs to start or resume are looked for (fractions allowed): a "
        "person who answered a form waits up to this long before the run goes on "
        "(Prefect's default is 10; 0.5 took 0.3-0.5 s off each start against 1)",
    )
    parser.add_argument(
        "--process-limit",
        type=int,
        default=int(os.environ.get("PREFECT_RUNNER_PROCESS_LIMIT", str(PROCESS_LIMIT))),
        help="most run processes at once (runs waiting in their warm window count); more "
        "runs to start or resume wait their turn (0: no limit)",
    )
    args = parser.parse_args(argv)
    require_prefect_api()
    _log_to_stderr()
    settings = load_settings(Path(args.config) if args.config else None)
    beat_for_recovery(settings)
    start_runs_preloaded()  # its imports go on while the rest starts
    start_listening(settings, args.config)
    start_retrying(settings.recovery)
    start_http_port(settings, args.config)
    with suppress(KeyboardInterrupt, TerminationSignal):
        asyncio.run(
            serve_flows(
                settings,
                args.config,
                args.detect_cron,
                args.poll_seconds,
                args.process_limit or None,
            )
        )


def start_http_port(settings: Settings, config: str | None) -> HttpPort | None:
    """Alerts in and metrics out on `[intake] address:port` (none with port 0)."""
    intake = settings.intake
    if intake.port == 0:
        return None
    if not intake.secret_token():
        log.warning(
            "no intake token: every alert is refused until CERTRENEW_INTAKE__TOKEN (or "
            "intake.token_file) is set and certrenew serve restarted"
        )
    metrics = Metrics(read_runs=_unfinished_renewal_runs)
    app = intake_app(
        Intake(settings, config, counted=metrics.count_alert),
        metrics.scrape,
        refused=metrics.count_refusal,
    )
    port = HttpPort(app, intake.address, intake.port).start()
    start_probing(settings, metrics.probes)
    return port


def _unfinished_renewal_runs() -> list[FlowRun]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return list(unfinished_renewal_runs(client))


def _log_to_stderr() -> None:
    """What the guard and the intake did with each request goes to this process's log."""
    logger = logging.getLogger("certrenew")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def beat_for_recovery(settings: Settings) -> None:
    """Heartbeats on for the runs this process starts (the recovery finds silent ones).

    The runs are child processes: they read the heartbeat frequency from the
    environment they inherit.
    """
    if settings.recovery.enabled:
        os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(settings.recovery.heartbeat_seconds)


if __name__ == "__main__":
    main()
