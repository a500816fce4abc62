"""How long a person waits on the machinery between two forms (`make bench-resume`).

Runs the demo's renewal unattended on a Prefect server of its own, `--repeat`
times per variant, and for every answer reads the run's state history to split
the time from submitting a form to the next question being shown:

- **pickup**: from the resume (the run is Scheduled again) until the serving
  process picks the run up (Pending): the runner's polling;
- **start**: from Pending to Running: a new Python process, its imports, the
  flow's context;
- **replay + step**: from Running until the next question can be answered:
  the flow going through its finished steps again, then the new step's work
  and the API calls that save the next form.

Also: from `certificate.expiring` to the renewal running, and the whole
runbook's machine time (first Running to Completed, minus nothing: the demo's
people answer at once). Variants change one lever at a time (the runner's
poll frequency) so its effect is read against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

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
class Renewal:
    event_to_running: float
    machine_time: float
    answers: list[Answer]


def states(run_id: UUID) -> list[Any]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)


def first_after(history: list[Any], moment: Any, kind: str) -> Any:
    return next(s for s in history if s.timestamp >= moment and s.type.value == kind)


def one_renewal(folder: Path, env: dict[str, str]) -> Renewal:
    """The demo's renewal from detection to retirement, answered at once, timed."""
    from prefect.flow_runs import resume_flow_run

    from certrenew.flows.detect_expiring import detect_expiring_certificates

    ca = LocalCA("certrenew bench CA")
    old = ca.issue(DEMO_DOMAIN, days=5, key_type="rsa")
    with TLSServer(old, host="127.0.0.1") as server:
        inventory = folder / "inventory.yaml"
        write_inventory(inventory, [inventory_entry(DEMO_NAME, DEMO_DOMAIN, server.address)])
        overrides = demo_environment(folder, inventory, DEMO_TIMINGS) | env
        os.environ.update(overrides)
        config = EXAMPLES / "certrenew.toml"
        settings = load_settings(config)
        stack = LocalStack(folder / "prefect", config)
        stack.env.update(overrides)
        with stack:
            os.environ.update(stack.env)
            wait_for_deployment()
            detected = time.time()
            detect_expiring_certificates(str(settings.inventory), str(config))
            run_id = find_renewal_run()
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


def split(history: list[Any], detected: float, resumed: list[tuple[str, float]]) -> Renewal:
    from datetime import UTC, datetime

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    first_running = first_after(history, at(detected), "RUNNING")
    answers = []
    for key, moment in resumed:
        pending = first_after(history, at(moment), "PENDING")
        running = first_after(history, pending.timestamp, "RUNNING")
        after = first_after(history, running.timestamp, "PAUSED") if key != "retire" else None
        after = after or first_after(history, running.timestamp, "COMPLETED")
        # A question counts as shown once its form is saved, a moment after the pause: the
        # pause's timestamp is the closest the state history comes to it.
        answers.append(
            Answer(
                key,
                (pending.timestamp - at(moment)).total_seconds(),
                (running.timestamp - pending.timestamp).total_seconds(),
                (after.timestamp - running.timestamp).total_seconds(),
            )
        )
    completed = first_after(history, first_running.timestamp, "COMPLETED")
    return Renewal(
        (first_running.timestamp - at(detected)).total_seconds(),
        (completed.timestamp - first_running.timestamp).total_seconds(),
        answers,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.resume_latency", description=__doc__
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--poll", type=int, nargs="+", default=[10, 1])
    args = parser.parse_args(argv)
    results: dict[str, list[Renewal]] = defaultdict(list)
    for _ in range(args.repeat):
        for poll in args.poll:  # interleaved: each variant meets the same machine load
            label = f"runner poll {poll} s"
            with tempfile.TemporaryDirectory(prefix="certrenew-bench-") as tmp:
                env = {"PREFECT_RUNNER_POLL_FREQUENCY": str(poll)}
                results[label].append(one_renewal(Path(tmp), env))
    print(f"{os.cpu_count()} cores; medians of {args.repeat} renewals per variant (seconds)")
    for label, renewals in results.items():
        answers = [a for r in renewals for a in r.answers]
        med = statistics.median
        print(f"\n{label}")
        print(f"  event -> renewal running      {med(r.event_to_running for r in renewals):6.2f}")
        print(f"  first running -> completed    {med(r.machine_time for r in renewals):6.2f}")
        print(
            f"  submit -> next question       {med(a.total for a in answers):6.2f}"
            f"  (slowest {max(a.total for a in answers):.2f})"
        )
        print(f"    pickup (runner polling)     {med(a.pickup for a in answers):6.2f}")
        print(f"    start (process, imports)    {med(a.start for a in answers):6.2f}")
        print(f"    replay + step + form        {med(a.replay_and_step for a in answers):6.2f}")


if __name__ == "__main__":
    main()
