"""Serve the renewal flow as a deployment so its human steps can suspend.

A suspended run holds no process: when a person resumes it, this serving
process starts it again. Renewals start from `certrenew renew NAME`, or by
themselves from the detection flow's `certificate.expiring` events.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from certrenew.config import CONFIG_ENV
from certrenew.errors import CertRenewError
from certrenew.flows.detect_expiring import (
    EXPIRING_EVENT,
    RESOURCE_PREFIX,
    detect_expiring_certificates,
)
from certrenew.flows.renew_certificate import renew_certificate
from certrenew.tasks.prefect_api import require_prefect_api, unreachable

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
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    require_prefect_api()
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
    except httpx.TransportError as exc:  # the server went away after answering its health check
        raise unreachable(exc) from None
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
    require_prefect_api()
    serve(renewal_deployment(args.config), detection_deployment(args.config, args.detect_cron))


if __name__ == "__main__":
    main()
