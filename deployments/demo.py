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
from certrenew.naming import renewal_file_names
from certrenew.pki.certs import serial_hex
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import OpenQuestion, Question, open_question, question_of

RENEWAL_DEPLOYMENT = "renew-certificate/renew-certificate"

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO_DOMAIN = "seu.demo.example.cat"
DEMO_NAME = "seu-demo"


# Played by code, every person answers at once: no reason to poll a ticket for minutes.
DEMO_TIMINGS: dict[str, float] = {
    "attachment_poll_minutes": 0,
    "verify_poll_minutes": 0,
    "verify_poll_seconds": 1,
}
# With a person at the keyboard, the ticket people act within seconds and the flow polls
# their tickets briefly before it asks the person (who may paste the mailed .crt then).
PEOPLE_TIMINGS: dict[str, float] = {
    "attachment_poll_minutes": 0.5,
    "attachment_poll_seconds": 2,
    "verify_poll_minutes": 2,
    "verify_poll_seconds": 2,
}


def demo_environment(data_dir: Path, inventory: Path, timings: dict[str, float]) -> dict[str, str]:
    """Settings the demo overrides on top of the configuration, for every process."""
    return {
        "CERTRENEW_DATA_DIR": str(data_dir),
        "CERTRENEW_INVENTORY": str(inventory),
        **{f"CERTRENEW_RENEWAL__{key.upper()}": str(value) for key, value in timings.items()},
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
    """The serving process registers the deployment once it listens for expiring events.

    It subscribes to the events before it serves, and the subscription replays
    the last minute of events when it connects, so an event sent from now on
    is heard.
    """
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                client.read_deployment_by_name(RENEWAL_DEPLOYMENT)
                return
            except ObjectNotFound:
                time.sleep(0.5)
    raise CertRenewError(
        f"the deployment {RENEWAL_DEPLOYMENT} was not served within {timeout:.0f} s"
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
    from prefect.settings import PREFECT_API_URL, temporary_settings

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
        timings = DEMO_TIMINGS if unattended else PEOPLE_TIMINGS
        overrides = demo_environment(data_dir, inventory, timings)
        os.environ.update(overrides)
        settings = load_settings(config)
        say(f"TLS endpoint {server.address} serves {DEMO_DOMAIN}, expiring in 5 days")
        stack = LocalStack(data_dir / "prefect", config)
        stack.env.update(overrides)
        say("starting a local Prefect server and the renewal deployment ...")
        try:
            # Prefect read its settings when it was imported: without the server's address
            # this process would start a temporary server of its own on the same database,
            # and two servers writing one SQLite file refuse writes ("database is locked").
            with stack, temporary_settings({PREFECT_API_URL: stack.api_url}):
                os.environ.update(stack.env)
                say(f"Prefect UI: {stack.ui_url}")
                people = DemoPeople(settings, ca, server, DEMO_DOMAIN, say)
                served = serial_hex(old.certificate.serial_number)
                run_id = _start_renewal(settings, config, say)
                page = f"{stack.ui_url}/runs/flow-run/{run_id}"
                say(f"renewal run: {page}")
                renewal = renewal_id(DEMO_DOMAIN, served)
                if unattended:
                    state = _play_everyone(run_id, people, renewal)
                else:
                    state = _leave_forms_to_a_person(run_id, people, renewal, page, data_dir, say)
                return _finish(stack, settings, state, as_json, say)
        except KeyboardInterrupt:
            say("\nstopped: the Prefect server and the serving process are shut down")
            return 130


def _start_renewal(settings: Settings, config: Path, say: Callable[[str], None]) -> UUID:
    from certrenew.flows.detect_expiring import detect_expiring_certificates

    wait_for_deployment()
    detect_expiring_certificates(str(settings.inventory), str(config))
    say("detection: the certificate is within its threshold; the event starts its renewal")
    return find_renewal_run()


def _play_everyone(run_id: UUID, people: DemoPeople, renewal: str) -> Any:
    """Unattended: every question is answered as its person would, through the same forms."""
    from prefect.flow_runs import resume_flow_run

    while (question := wait_for_question(run_id)) is not None:
        key = question.key
        resume_flow_run(run_id, run_input=people.answer(key, renewal))
        wait_for_run(run_id, lambda state: not _asking(state, key))  # noqa: B023 - waited here
    return wait_for_run(run_id, lambda s: s.is_final()).state


def _leave_forms_to_a_person(
    run_id: UUID,
    people: DemoPeople,
    renewal: str,
    page: str,
    data_dir: Path,
    say: Callable[[str], None],
) -> Any:
    """Interactive: the ticket people act by themselves; every form waits for the person here."""
    from prefect import get_client

    mailbox = data_dir / "mailbox"
    asked = ""
    say(
        "\nThe systems team, the service owner, the CA and the installers are played by the "
        "demo; every support-staff step is yours, in the Prefect UI. Ctrl-C stops the demo."
    )
    with get_client(sync_client=True) as client:
        while True:
            people.work_tickets(renewal, mailbox)
            state = client.read_flow_run(run_id).state
            if state is not None and state.is_final():
                return state
            question = open_question(run_id)
            if question is not None and question.key != asked:
                asked = question.key
                say(what_to_do(question, people, renewal, page, mailbox))
            time.sleep(1)


def _asking(state: Any, key: str) -> bool:
    return bool(state.is_paused() and state.state_details.pause_key == key)


def what_to_do(
    question: OpenQuestion, people: DemoPeople, renewal: str, page: str, mailbox: Path
) -> str:
    """What the person at the keyboard does for `question`, in the demo's terms."""
    kind = question_of(question.key)
    hint = {
        Question.CA_REQUEST: "The form shows every value of the CA's portal form. Pretend to "
        "file it, then enter any request number (e.g. REQ000123) and your login.",
        Question.CERTIFICATE: "The CA mailed the new certificate: "
        f"{mailbox / renewal_file_names(DEMO_DOMAIN)['crt']}. Paste its contents into the "
        "form, or attach it with `certrenew tickets attach "
        f"{_ticket_key(people, renewal)} <that file>` and submit with the fields empty.",
        Question.INSTALL: "Choose to check the endpoints again, or confirm the installation.",
        Question.RETIRE: "Say what was done with the old certificate (revoked, or retired "
        "without revocation) and enter your login.",
        Question.CA_CHOICE: "Choose the CA the service owner named and enter your login.",
        Question.WAIT: "Something outside failed: the form says what. Fix it, then submit.",
    }.get(kind, "The form's description says what to do.")
    return (
        f"\nThe renewal waits for you at step '{question.key}'.\n{hint}\n"
        f"Answer it in the Prefect UI: {page} (Resume)."
    )


def _ticket_key(people: DemoPeople, renewal: str) -> str:
    found = people.tracker().find_tickets(f"{renewal}-csr")
    return found[0].key if found else "<ticket>"


def _finish(
    stack: LocalStack, settings: Settings, state: Any, as_json: bool, say: Callable[[str], None]
) -> int:
    if not state.is_completed():
        log = stack.runner.tail() if stack.runner else ""
        sys.stderr.write(f"the renewal ended {state.name}: {state.message}\n{log}\n")
        return 1
    report = demo_report(settings, state.result())
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        say("\nThe renewal is complete:\n" + json.dumps(report, indent=2, ensure_ascii=False))
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
