"""Serve the renewal flow as a deployment so its human steps can suspend.

A suspended run holds no process: when a person resumes it, this serving
process starts it again. Renewals start from `certrenew renew NAME`, or by
themselves from the detection flow's `certificate.expiring` events.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from certrenew.config import CONFIG_ENV, load_settings
from certrenew.deployments.recovery import install_recovery
from certrenew.errors import CertRenewError
from certrenew.flows.detect_expiring import (
    EXPIRING_EVENT,
    RESOURCE_PREFIX,
    detect_expiring_certificates,
)
from certrenew.flows.renew_certificate import renew_certificate

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


def renewal_deployment(config: str | None) -> RunnerDeployment:
    # Called from sync code: the deployment itself, not the coroutine async_dispatch allows for.
    return cast(
        RunnerDeployment,
        renew_certificate.to_deployment(
            name="renew-certificate",
            parameters={"config": config},
            triggers=[
                DeploymentEventTrigger(
                    expect={EXPIRING_EVENT},
                    match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
                    parameters={"name": "{{ event.payload.name }}", "config": config},
                )
            ],
            description="The certificate renewal runbook, steps 0-8.",
        ),
    )


def start_renewal(name: str, config: str | None, force: bool, urgent: bool) -> str:
    """Create a renewal run on the served deployment; returns its page in the Prefect UI."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        # Called from sync code: the flow run itself, not the coroutine async_dispatch allows for.
        run = cast(
            "FlowRun",
            run_deployment(
                f"{renew_certificate.name}/renew-certificate",
                parameters={"name": name, "config": config, "force": force, "urgent": urgent},
                timeout=0,
            ),
        )
    except ObjectNotFound:
        raise CertRenewError(
            f"no renewal deployment on the Prefect server at {PREFECT_API_URL.value() or '(none)'}"
            ": start `certrenew serve` there, and set PREFECT_API_URL to that server here"
        ) from None
    ui = PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{run.id}" if ui else str(run.id)


def detection_deployment(config: str | None, cron: str) -> RunnerDeployment:
    # Called from sync code: the deployment itself, not the coroutine async_dispatch allows for.
    return cast(
        RunnerDeployment,
        detect_expiring_certificates.to_deployment(
            name="detect-expiring",
            parameters={"config_path": config},
            cron=cron,
            description="Scan the inventory; announce certificates due for renewal.",
        ),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=os.environ.get(CONFIG_ENV))
    parser.add_argument(
        "--detect-cron", default="0 7 * * *", help="when detection runs (cron, server time zone)"
    )
    args = parser.parse_args(argv)
    prepare_recovery(args.config)
    serve(renewal_deployment(args.config), detection_deployment(args.config, args.detect_cron))


def prepare_recovery(config: str | None) -> None:
    """Heartbeats on for the runs this process starts, and the recovery automations installed.

    The runs are child processes: they read the heartbeat frequency from the
    environment they inherit.
    """
    settings = load_settings(Path(config) if config else None).recovery
    if settings.enabled:
        os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(settings.heartbeat_seconds)
    install_recovery(settings)


if __name__ == "__main__":
    main()
