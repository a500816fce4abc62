"""What waiting renewals cost, at scale (`make bench-waiting`).

On a Prefect server of its own with the serving process, `--renewals` N
renewals of N different certificates (served by nginx from the scan bed, see
`benchmarks.scan_bed.build_bed`) are started with `run_deployment`, as the
detection's event would start them (with `force`: the bed's expiries are spread
over a year, and every one of them is to wait). Each reaches the CSR step (`csr-1`) and
waits for support staff. While all of them wait, measured:

- **processes held**: every process under the serving process (but its fork
  server and multiprocessing's resource tracker, one each whatever the number
  of runs) and every Python process running `prefect.engine` (a waiting
  renewal should hold none);
- **server memory**: RSS of the `prefect server` process tree (from /proc),
  before the first renewal and with all N waiting;
- **database growth per waiting renewal**: the server's SQLite file under the
  stack's PREFECT_HOME plus its WAL, before and after, divided by N.

Then the systems team attaches each CSR and key to its ticket (not timed), and
support staff answer every CSR step through the API the UI uses
(`resume_flow_run` with the form's input), all at once. Reported: runs resumed
per second until each one asks its next question (the CA choice), the median
and the slowest resume (from the resume call to the next question's pause).

Then, on a second server of its own (no serving process, so its events start
no renewals), the detection flow over `--detect-targets` targets of the bed as
a whole process: how many `certificate.expiring` events the server received,
events per second over the announcing task, and the size of the expiry table
artifact (its JSON as the API returns it).

One run per invocation: the figures depend on the machine's load, so the
report starts with `uptime`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import httpx
from cryptography import x509

from benchmarks.scan_bed import Bed, build_bed
from certrenew.config import load_settings
from certrenew.deployments.demo import (
    DEMO_TIMINGS,
    EXAMPLES,
    RENEWAL_DEPLOYMENT,
    demo_environment,
    wait_for_deployment,
)
from certrenew.deployments.serve import PROCESS_LIMIT
from certrenew.errors import CertRenewError
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.people import DemoPeople
from certrenew.lab.stack import LocalStack
from certrenew.lab.tls import LocalCA, TLSServer
from certrenew.pki.certs import serial_hex
from certrenew.renewal import renewal_id

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

FIRST_QUESTION = "csr-1"


@dataclass(frozen=True)
class Target:
    name: str
    domain: str
    address: str
    serial: str


def bed_targets(bed: Bed) -> list[Target]:
    """The bed's endpoints as renewal targets, with the serial each one serves."""
    found = []
    for index, line in enumerate(bed.targets.read_text().split("\n")):
        if not line:
            continue
        host, port, domain = line.split()
        cert = x509.load_pem_x509_certificate((bed.folder / f"{domain}.crt").read_bytes())
        found.append(
            Target(f"bench-{index}", domain, f"{host}:{port}", serial_hex(cert.serial_number))
        )
    return found


def tree(root: int) -> list[int]:
    """`root` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def engine_processes(api_url: str) -> list[int]:
    """Python processes running a flow run (`python -m prefect.engine`) for this server."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"prefect.engine" in command and f"PREFECT_API_URL={api_url}".encode() in environ:
                found.append(int(entry.name))
    return found


def held_processes(stack: LocalStack) -> set[int]:
    """Processes the waiting renewals hold: under the serving process, or running a flow."""
    assert stack.runner
    serving = stack.runner.proc.pid
    below = {p for p in tree(serving) if p != serving} - start_machinery(serving)
    return below | set(engine_processes(stack.api_url))


def start_machinery(serving: int) -> set[int]:
    """The fork server runs are forked from, and multiprocessing's resource tracker.

    One of each per serving process, whatever number of runs wait; the runs
    are the fork server's children (certrenew.deployments.preload).
    """
    found = set()
    for pid in tree(serving):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == serving and b"multiprocessing" in command:
            found.add(pid)
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total / 1024


def database_bytes(home: Path) -> int:
    return sum(path.stat().st_size for path in home.glob("prefect.db*") if path.suffix != ".lock")


def run_states(ids: list[UUID]) -> dict[UUID, Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    states = {}
    with get_client(sync_client=True) as client:
        for offset in range(0, len(ids), 200):
            batch = ids[offset : offset + 200]
            for run in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=batch)), limit=len(batch)
            ):
                states[run.id] = run.state
    return states


def asking(state: Any, key: str | None = None) -> bool:
    """The run waits at a question (`key`, or any other than the first)."""
    if state is None or not state.is_paused():
        return False
    pause_key = state.state_details.pause_key or ""
    return pause_key == key if key else pause_key != FIRST_QUESTION


def wait_all(ids: list[UUID], done: Any, timeout: float) -> dict[UUID, float]:
    """When each run was first seen `done`; a run that ended first is printed and left out.

    On SQLite under hundreds of runs, the server refuses writes now and then
    (HTTP 503, "database is locked"); a run whose write was refused past the
    client's retries ends Failed. Those are counted, not the benchmark's end.
    """
    seen: dict[UUID, float] = {}
    ended: set[UUID] = set()
    deadline = time.monotonic() + timeout
    while len(seen) + len(ended) < len(ids):
        if time.monotonic() > deadline:
            sys.exit(f"only {len(seen)} of {len(ids)} runs got there within {timeout:.0f} s")
        pending = [i for i in ids if i not in seen and i not in ended]
        for run_id, state in run_states(pending).items():
            if state is not None and state.is_final():
                ended.add(run_id)
                print(f"  run {run_id} ended {state.name}: {(state.message or '')[:160]}")
            elif done(state):
                seen[run_id] = time.monotonic()
        time.sleep(0.5)
    if ended:
        print(f"  {len(ended)} of {len(ids)} runs ended before they got there")
    return seen


def start_renewal(target: Target, config: Path) -> UUID:
    """`run_deployment` for one target, again when SQLite refused the write (HTTP 503)."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import PrefectHTTPStatusError

    for attempt in range(10):
        try:
            run = run_deployment(
                RENEWAL_DEPLOYMENT,
                parameters={"name": target.name, "config": str(config), "force": True},
                timeout=0,
            )
            return cast("FlowRun", run).id
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 503 or attempt == 9:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def waiting_renewals(folder: Path, bed: Bed, count: int, warm: float, process_limit: int) -> None:
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    targets = bed_targets(bed)[:count]
    inventory = folder / "inventory.yaml"
    write_inventory(inventory, [inventory_entry(t.name, t.domain, t.address) for t in targets])
    overrides = demo_environment(folder / "data", inventory, DEMO_TIMINGS)
    overrides["CERTRENEW_RENEWAL__WARM_WAIT_SECONDS"] = str(warm)
    os.environ.update(overrides)
    config = EXAMPLES / "certrenew.toml"
    settings = load_settings(config)
    stack = LocalStack(
        folder / "prefect", config, serve_args=("--process-limit", str(process_limit))
    )
    stack.env.update(overrides)
    with stack, temporary_settings({PREFECT_API_URL: stack.api_url}):
        assert stack.server and stack.runner
        wait_for_deployment()
        server_before = rss_mib(tree(stack.server.proc.pid))
        db_before = database_bytes(stack.home)
        started = time.monotonic()
        ids = [start_renewal(t, config) for t in targets]
        there = wait_all(ids, lambda s: asking(s, FIRST_QUESTION), timeout=60 + 30 * count)
        reached = time.monotonic() - started
        targets = [t for t, i in zip(targets, ids, strict=True) if i in there]
        ids = [i for i in ids if i in there]
        count = len(ids)
        # Each run's process stays for its warm window, then suspends the run and exits: held
        # counted at once, then again once they are gone (or a minute after the window).
        held_at_once = len(held_processes(stack))
        settled = time.monotonic()
        while (held := held_processes(stack)) and time.monotonic() - settled < warm + 60:
            time.sleep(1)
        settled = time.monotonic() - settled
        server_waiting = rss_mib(tree(stack.server.proc.pid))
        db_waiting = database_bytes(stack.home)
        print(f"\n{count} renewals waiting at {FIRST_QUESTION}: all there after {reached:.0f} s")
        print(
            f"  processes held: {held_at_once} as the last run paused, {len(held)} "
            f"{settled:.0f} s later (under the serving process or running prefect.engine; "
            f"warm window {warm:g} s, process limit {process_limit})"
        )
        print(f"  server RSS: {server_before:.0f} MiB before, {server_waiting:.0f} MiB waiting")
        print(
            f"  database + WAL: {db_before / 2**20:.1f} MiB before, {db_waiting / 2**20:.1f} MiB "
            f"after: {(db_waiting - db_before) / count / 1024:.1f} KiB per waiting renewal"
        )

        # The systems team's part (a CSR and key on each ticket) is done first and not timed:
        # what is timed is the machinery from a submitted form to the next question.
        ca = LocalCA("certrenew bench CA")
        answers = []
        for target in targets:
            server = cast(TLSServer, None)  # the CSR step never installs anything
            people = DemoPeople(settings, ca, server, target.domain, lambda _: None)
            answers.append(people.answer(FIRST_QUESTION, renewal_id(target.domain, target.serial)))
        resumed: dict[UUID, float] = {}
        for run_id, answer in zip(ids, answers, strict=True):
            for attempt in range(10):  # SQLite refuses a write now and then (HTTP 503)
                try:
                    resume_flow_run(run_id, run_input=answer)
                    break
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code != 503 or attempt == 9:
                        raise
                    time.sleep(1)
            resumed[run_id] = time.monotonic()
        asked = wait_all(ids, asking, timeout=60 + 30 * count)
    ids = [i for i in ids if i in asked]
    count = len(ids)
    first = min(resumed.values())
    waits = [asked[i] - resumed[i] for i in ids]
    span = max(asked.values()) - first
    calls = max(resumed.values()) - first
    print(f"\nresuming all {count} at the CSR step (the resume calls took {calls:.1f} s)")
    print(f"  throughput: {count / span:.2f} runs/s to the next question ({span:.0f} s for all)")
    median = statistics.median(waits)
    print(f"  resume -> next question: median {median:.1f} s, slowest {max(waits):.1f} s")


def events(api: str, order: str) -> dict[str, Any]:
    """The server's page of `certificate.expiring` events: the first in `order`, and the total."""
    from certrenew.flows.detect_expiring import EXPIRING_EVENT

    filter_ = {"event": {"name": [EXPIRING_EVENT]}, "order": order}
    page = httpx.post(f"{api}/events/filter", json={"filter": filter_, "limit": 1}, timeout=30)
    page.raise_for_status()
    return cast("dict[str, Any]", page.json())


def stamp(page: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(page["events"][0][field])


def detection(folder: Path, bed: Bed) -> None:
    """The detection flow over the whole bed, as a whole process, on a server of its own."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from certrenew.flows.detect_expiring import EXPIRING_EVENT, EXPIRY_ARTIFACT_KEY

    stack = LocalStack(folder / "prefect-detection", None, serving=False)
    try:
        stack.start(timeout=180)
    except CertRenewError as exc:
        sys.exit(f"the detection's Prefect server did not start: {exc}")
    api = stack.api_url
    # The bed's own configuration: nothing of the renewal phase's settings.
    env = {k: v for k, v in stack.env.items() if not k.startswith("CERTRENEW_")}
    try:
        code = (
            "import json, sys; from certrenew.flows.detect_expiring import "
            "detect_expiring_certificates as d; "
            "print(json.dumps(d(sys.argv[1], sys.argv[2])['targets']))"
        )
        began = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-c", code, str(bed.inventory), str(bed.config)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - began
        if out.returncode != 0:
            sys.exit(f"the detection failed: {out.stderr[-800:]}")
        with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            tasks = client.read_task_runs()
            task = next(t for t in tasks if t.name.startswith("announce-expiring"))
            flow_run = client.read_flow_run(task.flow_run_id) if task.flow_run_id else None
            artifact = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[EXPIRY_ARTIFACT_KEY]))
            )[0]
        first, last = (events(api, order) for order in ("ASC", "DESC"))
    finally:
        stack.stop()
    assert task.start_time and task.end_time, "the announcing task did not finish"
    announcing = (task.end_time - task.start_time).total_seconds()
    received = first["total"]
    # Events leave the flow's process in the background: the rate counts from the first
    # event's emission until the server received the last one.
    span = (stamp(last, "received") - stamp(first, "occurred")).total_seconds()
    size = len(json.dumps(artifact.data))
    print(f"\ndetection over {bed.count} targets (whole process {wall:.0f} s)")
    print(
        f"  {received} {EXPIRING_EVENT} events received by the server {span:.1f} s after the "
        f"first was emitted: {received / span:.0f} events/s (the announcing task took "
        f"{announcing:.1f} s)"
    )
    print(
        f"  expiry table artifact: {size / 1024:.0f} KiB ({size / bed.count:.0f} bytes per target)"
    )
    # Where the whole process's time went: the flow run, then each of its steps.
    if flow_run is not None and flow_run.start_time and flow_run.end_time:
        run = (flow_run.end_time - flow_run.start_time).total_seconds()
        print(f"  the flow run {run:.1f} s; before it (process start, imports) {wall - run:.1f} s")
    for step in sorted(tasks, key=lambda t: str(t.start_time)):
        if step.start_time and step.end_time:
            took = (step.end_time - step.start_time).total_seconds()
            print(f"    {step.name}: {took:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.waiting_renewals", description=__doc__
    )
    parser.add_argument("--renewals", type=int, default=500)
    parser.add_argument("--detect-targets", type=int, default=10_000, help="0: skip detection")
    parser.add_argument(
        "--warm", type=float, default=120, help="[renewal] warm_wait_seconds for the renewals"
    )
    parser.add_argument(
        "--process-limit", type=int, default=PROCESS_LIMIT, help="certrenew serve's limit"
    )
    args = parser.parse_args(argv)
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; {load}")
    with tempfile.TemporaryDirectory(prefix="certrenew-bench-") as tmp:
        folder = Path(tmp)
        (folder / "bed").mkdir()
        bed = build_bed(folder / "bed", max(args.renewals, args.detect_targets))
        try:
            if args.renewals:
                waiting_renewals(folder, bed, args.renewals, args.warm, args.process_limit)
            if args.detect_targets:
                detection(folder, bed)
        finally:
            bed.stop()


if __name__ == "__main__":
    main()
