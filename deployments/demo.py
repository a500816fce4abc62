"""`certrenew demo`: the whole runbook on this machine, with nothing to configure.

It starts a local Prefect server and the serving process, a TLS endpoint on
loopback whose certificate expires in a few days, and a local CA standing in
for the real one; then it detects the expiring certificate and starts its
renewal. Interactive, it stops at the first human step and prints where to
answer it. Unattended, it plays every person's part through the same channels
people use (ticket attachments and comments, resume forms through the API) so
the runbook completes by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from certrenew.config import Settings, load_settings
from certrenew.errors import CertRenewError
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.people import DemoPeople
from certrenew.lab.stack import LocalStack
from certrenew.lab.tls import LocalCA, TLSServer
from certrenew.pki.certs import serial_hex
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import OpenQuestion, open_question

RENEWAL_DEPLOYMENT = "renew-certificate/renew-certificate"

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO_DOMAIN = "seu.demo.example.cat"
DEMO_NAME = "seu-demo"


# People answer at once in the demo: no reason to poll a ticket for minutes.
DEMO_TIMINGS = {"attachment_poll_minutes": 0, "verify_poll_minutes": 0, "verify_poll_seconds": 1}


def demo_environment(data_dir: Path, inventory: Path) -> dict[str, str]:
    """Settings the demo overrides on top of the configuration, for every process."""
    return {
        "CERTRENEW_DATA_DIR": str(data_dir),
        "CERTRENEW_INVENTORY": str(inventory),
        **{f"CERTRENEW_RENEWAL__{key.upper()}": str(value) for key, value in DEMO_TIMINGS.items()},
    }


def wait_for_run(flow_run_id: UUID, until: Callable[[Any], bool], timeout: float = 300) -> Any:
    from prefect import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state and until(run.state):
                return run
            time.sleep(1)
    raise CertRenewError(f"flow run {flow_run_id} did not move on within {timeout:.0f} s")


def wait_for_question(flow_run_id: UUID, timeout: float = 300) -> OpenQuestion | None:
    """The next question the run asks, ready to answer; None once the run has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        question = open_question(flow_run_id)
        if question is not None:
            return question
        if wait_for_run(flow_run_id, lambda _: True).state.is_final():
            return None
        time.sleep(0.5)
    raise CertRenewError(f"flow run {flow_run_id} asked nothing within {timeout:.0f} s")


def wait_for_deployment(timeout: float = 120) -> None:
    """The serving process registers the deployment, then its event trigger (an automation)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                deployment = client.read_deployment_by_name(RENEWAL_DEPLOYMENT)
            except ObjectNotFound:
                time.sleep(0.5)
                continue
            automations = client.read_automations()
            if any(
                getattr(action, "deployment_id", None) == deployment.id
                for automation in automations
                for action in automation.actions
            ):
                return
            time.sleep(0.5)
    raise CertRenewError(
        f"the deployment {RENEWAL_DEPLOYMENT} and its trigger were not served within "
        f"{timeout:.0f} s"
    )


def find_renewal_run(timeout: float = 120) -> UUID:
    """The renewal run the detection's event started (the trigger creates it)."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=["renew-certificate"])
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=10,
            )
            if runs:
                return runs[0].id
            time.sleep(1)
    raise CertRenewError("no renewal run was started by the expiring-certificate event")


def run_demo(config: Path | None, unattended: bool, as_json: bool, data_dir: Path) -> int:
    say: Callable[[str], None] = (lambda _: None) if as_json else (lambda m: print(m, flush=True))
    # Stopped by a signal, still stop the server and the serving process on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = config or EXAMPLES / "certrenew.toml"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    ca = LocalCA("certrenew demo CA")
    old = ca.issue(DEMO_DOMAIN, days=5, key_type="rsa")
    with TLSServer(old, host="127.0.0.1") as server:
        inventory = data_dir / "inventory.yaml"
        write_inventory(inventory, [inventory_entry(DEMO_NAME, DEMO_DOMAIN, server.address)])
        overrides = demo_environment(data_dir, inventory)
        os.environ.update(overrides)
        settings = load_settings(config)
        say(f"TLS endpoint {server.address} serves {DEMO_DOMAIN}, expiring in 5 days")
        stack = LocalStack(data_dir / "prefect", config)
        stack.env.update(overrides)
        say("starting a local Prefect server and the renewal deployment ...")
        with stack:
            os.environ.update(stack.env)
            say(f"Prefect UI: {stack.ui_url}")
            served = serial_hex(old.certificate.serial_number)
            return _drive(stack, settings, ca, server, served, config, unattended, as_json, say)


def _drive(
    stack: LocalStack,
    settings: Settings,
    ca: LocalCA,
    server: TLSServer,
    served_serial: str,
    config: Path,
    unattended: bool,
    as_json: bool,
    say: Callable[[str], None],
) -> int:
    from prefect.flow_runs import resume_flow_run

    from certrenew.flows.detect_expiring import detect_expiring_certificates

    wait_for_deployment()
    detect_expiring_certificates(str(settings.inventory), str(config))
    say("detection: the certificate is within its threshold; the event starts its renewal")
    run_id = find_renewal_run()
    say(f"renewal run: {stack.ui_url}/runs/flow-run/{run_id}")
    renewal = renewal_id(DEMO_DOMAIN, served_serial)
    people = DemoPeople(settings, ca, server, DEMO_DOMAIN, say)
    while True:
        question = wait_for_question(run_id)
        if question is None:
            break
        key = question.key
        if not unattended:
            say(
                f"\nThe renewal waits for a person at step '{key}'.\n"
                f"Answer it in the Prefect UI: {stack.ui_url}/runs/flow-run/{run_id}\n"
                "(menu ⋮ → Resume). Press Ctrl-C to stop the demo."
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        resume_flow_run(run_id, run_input=people.answer(key, renewal))

        def moved_on(s: Any, k: str = key) -> bool:
            return not (s.is_paused() and s.state_details.pause_key == k)

        wait_for_run(run_id, moved_on)
    state = wait_for_run(run_id, lambda s: s.is_final()).state
    if not state.is_completed():
        log = stack.runner.tail() if stack.runner else ""
        sys.stderr.write(f"the renewal ended {state.name}: {state.message}\n{log}\n")
        return 1
    result = state.result()
    report = demo_report(settings, result)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        say(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def demo_report(settings: Settings, result: dict[str, Any]) -> dict[str, Any]:
    """The demo's closing JSON, read back from the tracker and the archive themselves."""
    from certrenew.adapters.wiring import build_archive, build_tracker

    tracker = build_tracker(settings)
    archive = build_archive(settings).archive
    tickets = [
        {
            "key": key,
            "kind": kind,
            "links": sorted(link.other_key for link in tracker.links(key)),
        }
        for kind, key in result["tickets"].items()
        if key
    ]
    folder = result["archive"][0].rsplit("/", 1)[0]
    stored = sorted(f"{folder}/{f.name}" for f in archive.list_files(folder))
    return {
        "domain": result["domain"],
        "tickets": tickets,
        "archive": stored,
        "old_serial": result["old_serial"],
        "new_serial": result["new_serial"],
        "verified": result["verified"],
        "retired": result["retired"],
    }
