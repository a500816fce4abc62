"""Serve the renewal flow as a deployment so its human steps can suspend.

A suspended run holds no process: when a person resumes it, this serving
process starts it again. Renewals start from `certrenew renew NAME`, or by
themselves from the detection flow's `certificate.expiring` events.
"""

from __future__ import annotations

import argparse
import os

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from certrenew.config import CONFIG_ENV
from flows.renew_certificate import renew_certificate

EXPIRING_EVENT = "certificate.expiring"


def renewal_deployment(config: str | None) -> RunnerDeployment:
    return renew_certificate.to_deployment(
        name="renew-certificate",
        parameters={"config": config},
        triggers=[
            DeploymentEventTrigger(
                expect={EXPIRING_EVENT},
                match={"prefect.resource.id": "certrenew.certificate.*"},
                parameters={"name": "{{ event.payload.name }}", "config": config},
            )
        ],
        description="The certificate renewal runbook, steps 0-8.",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=os.environ.get(CONFIG_ENV))
    args = parser.parse_args(argv)
    serve(renewal_deployment(args.config))


if __name__ == "__main__":
    main()
