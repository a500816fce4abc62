"""How long a person waits on the machinery between two forms (`make bench-resume`).

Runs the demo's renewal unattended on a Prefect server of its own, `--repeat`
times per variant, and for every answer reads the run's state history to split
the time from submitting a form to the next question being shown:

- **pickup**: from the resume (the run is Scheduled again) until the serving
  process picks the run up (Pending): the runner's polling;
- **start**: from Pending to Running: the run's process (a fork of the
  serving process's preloaded fork server; a new interpreter and its imports
  before), Prefect's engine setting up the flow's context;
- **replay + step**: from Running until the next question can be answered:
  the flow going through its finished steps again, then the new step's work
  and the API calls that save the next form.

With a warm window (`[renewal] warm_wait_seconds`) an answer within it is
taken by the run's waiting process: the run goes from Paused straight to
Running, and pickup and start are both 0; the whole wait is that process's
polling plus the step.

Also: from `certificate.expiring` to the renewal running, the whole runbook's
machine time (first Running to Completed; then less the time each question
was shown before this benchmark answered it: its own polling for the next
question, up to 1.5 s each, is a person's wait, not machinery), and, in a
fresh process per repetition, the time to import Prefect and then the renewal
flow's module (what a new interpreter pays before its first step; runs of
`certrenew serve` are forks of a process that has both imported). Variants
change one lever at a time (the warm window, the runner's poll frequency, with
`--against` another checkout) and are interleaved, so each is read against
the others under the same machine load.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import httpx

from certrenew.config import load_settings
from certrenew.deployments.demo import (
    DEMO_DOMAIN,
    DEMO_NAME,
    DEMO_TIMINGS,
    EXAMPLES,
    demo_environment,
    find_renewal_run,
    wait_for_deployment,
    wait_for_question,
    wait_for_run,
)
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.people import DemoPeople
from certrenew.lab.stack import LocalStack
from certrenew.lab.tls import LocalCA, TLSServer
from certrenew.pki.certs import serial_hex
from certrenew.renewal import renewal_id

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


@dataclass(frozen=True)
class Answer:
    question: str
    pickup: float
    start: float
    replay_and_step: float

    @property
    def total(self) -> float:
        return self.pickup + self.start + self.replay_and_step


@dataclass(frozen=True)
class Start:
    """From the `certificate.expiring` event to the renewal running."""

    admission: float  # the event heard, the guard's checks, the run created
    delivery: float  # of admission: from the event's emission until the server received it
    pickup: float  # created -> Pending: the runner's polling
    process: float  # Pending -> Running: the run's process, the flow's context

    @property
    def total(self) -> float:
        return self.admission + self.pickup + self.process


@dataclass(frozen=True)
class Renewal:
    start: Start
    machine_time: float
    answers: list[Answer]
    # Of machine_time: questions shown and not answered yet (this benchmark's own polling
    # for the next question, its people), the runbook's deliberate waits.
    unanswered: float

    @property
    def machinery(self) -> float:
        return self.machine_time - self.unanswered


def states(run_id: UUID) -> list[Any]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)


def first_after(history: list[Any], moment: Any, kind: str) -> Any:
    return next(s for s in history if s.timestamp >= moment and s.type.value == kind)


def one_renewal(folder: Path, env: dict[str, str], poll: float) -> Renewal:
    """The demo's renewal from detection to retirement, answered at once, timed."""
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    ca = LocalCA("certrenew bench CA")
    old = ca.issue(DEMO_DOMAIN, days=5, key_type="rsa")
    with TLSServer(old, host="127.0.0.1") as server:
        inventory = folder / "inventory.yaml"
        write_inventory(inventory, [inventory_entry(DEMO_NAME, DEMO_DOMAIN, server.address)])
        overrides = demo_environment(folder, inventory, DEMO_TIMINGS) | env
        os.environ.update(overrides)
        config = EXAMPLES / "certrenew.toml"
        settings = load_settings(config)
        # Prefect's own setting takes whole seconds; `certrenew serve` takes fractions.
        stack = LocalStack(folder / "prefect", config, serve_args=("--poll-seconds", f"{poll:g}"))
        stack.env.update(overrides)
        # Prefect read its settings when it was imported: without the stack's address the
        # detection below would run on a temporary server of its own.
        with stack, temporary_settings({PREFECT_API_URL: stack.api_url}):
            os.environ.update(stack.env)
            wait_for_deployment()
            detect(settings.inventory, config)
            run_id = find_renewal_run()
            detected = expiring_event_time(stack.api_url)
            people = DemoPeople(settings, ca, server, DEMO_DOMAIN, lambda _: None)
            renewal = renewal_id(DEMO_DOMAIN, serial_hex(old.certificate.serial_number))
            resumed: list[tuple[str, float]] = []
            while (question := wait_for_question(run_id)) is not None:
                resumed.append((question.key, time.time()))
                resume_flow_run(run_id, run_input=people.answer(question.key, renewal))
                asked = question.key
                wait_for_run(
                    run_id,
                    lambda s: not (s.is_paused() and s.state_details.pause_key == asked),  # noqa: B023
                )
            wait_for_run(run_id, lambda s: s.is_final())
            history = states(run_id)
    return split(history, detected, resumed)


DETECTION = "detect-expiring-certificates/detect-expiring"


def detect(inventory: Path, config: Path) -> None:
    """A detection run of the served deployment, as its daily schedule starts it.

    Run by `certrenew serve` (a fork of its preloaded process), as in
    production, not as a new interpreter of its own beside it.
    """
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name(DETECTION)
                break
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    run = cast(
        "FlowRun",
        run_deployment(
            DETECTION,
            parameters={"inventory_path": str(inventory), "config_path": str(config)},
            timeout=120,
            poll_interval=0.5,
        ),
    )
    if run.state is None or not run.state.is_completed():
        raise RuntimeError(f"the detection run ended {run.state}")


def expiring_event_time(api_url: str) -> tuple[datetime, datetime]:
    """When the detection emitted its `certificate.expiring` event, and when the server had it."""
    from certrenew.flows.detect_expiring import EXPIRING_EVENT

    filter_ = {"event": {"name": [EXPIRING_EVENT]}, "order": "ASC"}
    page = httpx.post(f"{api_url}/events/filter", json={"filter": filter_, "limit": 1}, timeout=30)
    page.raise_for_status()
    event = page.json()["events"][0]
    return datetime.fromisoformat(event["occurred"]), datetime.fromisoformat(event["received"])


def split(
    history: list[Any], detected: tuple[datetime, datetime], resumed: list[tuple[str, float]]
) -> Renewal:
    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    created = history[0]  # the run's first state: Scheduled, when the guard created it
    first_running = first_after(history, created.timestamp, "RUNNING")
    first_pending = first_after(history, created.timestamp, "PENDING")
    emitted, received = detected
    started = Start(
        (created.timestamp - emitted).total_seconds(),
        (received - emitted).total_seconds(),
        (first_pending.timestamp - created.timestamp).total_seconds(),
        (first_running.timestamp - first_pending.timestamp).total_seconds(),
    )
    answers = []
    unanswered = 0.0
    for key, moment in resumed:
        asked = max(
            (s for s in history if s.timestamp <= at(moment) and s.type.value == "PAUSED"),
            key=lambda s: s.timestamp,
        )
        unanswered += (at(moment) - asked.timestamp).total_seconds()
        running = first_after(history, at(moment), "RUNNING")
        # Taken by the waiting process: Paused -> Running, no pickup and no new process.
        pending = next(
            (
                s
                for s in history
                if at(moment) <= s.timestamp <= running.timestamp and s.type.value == "PENDING"
            ),
            running,
        )
        after = first_after(history, running.timestamp, "PAUSED") if key != "retire" else None
        after = after or first_after(history, running.timestamp, "COMPLETED")
        # A question counts as shown once its form is saved, a moment after the pause: the
        # pause's timestamp is the closest the state history comes to it.
        answers.append(
            Answer(
                key,
                max(0.0, (pending.timestamp - at(moment)).total_seconds()),
                (running.timestamp - pending.timestamp).total_seconds(),
                (after.timestamp - running.timestamp).total_seconds(),
            )
        )
    completed = first_after(history, first_running.timestamp, "COMPLETED")
    return Renewal(
        started,
        (completed.timestamp - first_running.timestamp).total_seconds(),
        answers,
        unanswered,
    )


CHECKOUT = Path(__file__).resolve().parents[1]

IMPORTS = (
    "import time; t = time.perf_counter(); import prefect; p = time.perf_counter(); "
    "import certrenew.flows.renew_certificate; f = time.perf_counter(); "
    "print(p - t, f - p)"
)


def import_seconds() -> tuple[float, float]:
    """Seconds to import Prefect, then the renewal flow's module, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.resume_latency", description=__doc__
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--poll", type=float, nargs="+", default=[0.5], help="runner poll, s")
    parser.add_argument(
        "--warm", type=float, nargs="+", default=[0, 120], help="warm windows, s (0: none)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        nargs="*",
        default=[],
        help="other checkouts of certrenew (e.g. from `git archive main`) whose serving "
        "process and flows run as variants too, interleaved with this one's",
    )
    args = parser.parse_args(argv)
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; {load.strip()}")
    results: dict[str, list[Renewal]] = defaultdict(list)
    imports: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        imports.append(import_seconds())
        # Interleaved: each variant meets the same machine load.
        for tree, poll, warm in itertools.product([None, *args.against], args.poll, args.warm):
            label = f"runner poll {poll:g} s, warm window {warm:g} s"
            with tempfile.TemporaryDirectory(prefix="certrenew-bench-") as tmp:
                env = {
                    "CERTRENEW_RENEWAL__WARM_WAIT_SECONDS": str(warm),
                    # Whose `certrenew` the serving process and the flows import.
                    "PYTHONPATH": str((tree or CHECKOUT).resolve()),
                }
                if tree is not None:
                    label = f"{tree}: {label}"
                # `python -m` puts the working folder first on sys.path: the tree's own.
                with contextlib.chdir(tree or CHECKOUT):
                    results[label].append(one_renewal(Path(tmp), env, poll))
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"at the end: {load.strip()}")
    print(f"medians of {args.repeat} renewals per variant (seconds)")
    med = statistics.median
    print(
        f"\nimports in a fresh process: prefect {med(i[0] for i in imports):.2f}, then the "
        f"renewal flow's module {med(i[1] for i in imports):.2f}"
    )
    for label, renewals in results.items():
        answers = [a for r in renewals for a in r.answers]
        print(f"\n{label}")
        print(f"  event -> renewal running      {med(r.start.total for r in renewals):6.2f}")
        print(f"    admission (event -> run)    {med(r.start.admission for r in renewals):6.2f}")
        print(f"      of it the event's delivery {med(r.start.delivery for r in renewals):5.2f}")
        print(f"    pickup (runner polling)     {med(r.start.pickup for r in renewals):6.2f}")
        print(f"    start (process, set-up)     {med(r.start.process for r in renewals):6.2f}")
        print(f"  first running -> completed    {med(r.machine_time for r in renewals):6.2f}")
        print(f"    less questions unanswered   {med(r.machinery for r in renewals):6.2f}")
        print(
            f"  submit -> next question       {med(a.total for a in answers):6.2f}"
            f"  (slowest {max(a.total for a in answers):.2f})"
        )
        print(f"    pickup (runner polling)     {med(a.pickup for a in answers):6.2f}")
        print(f"    start (process, set-up)     {med(a.start for a in answers):6.2f}")
        print(f"    replay + step + form        {med(a.replay_and_step for a in answers):6.2f}")


if __name__ == "__main__":
    main()
