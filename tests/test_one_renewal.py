"""One renewal per certificate, whatever asks: events, alerts and `certrenew renew` at once.

A real Prefect API, the real serving process (which hears the events and
takes the alerts over HTTP), real `certrenew renew` processes, all at the
same moment. The guard must let one
renewal run through and note the other requests once on its ticket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from certrenew.flows.detect_expiring import EXPIRING_EVENT, RESOURCE_PREFIX
from certrenew.rules import step_marker
from certrenew.tasks.context import RENEWAL_FLOW
from certrenew.tasks.guard import admit_renewal, open_renewal_run
from certrenew.triggers import Trigger, also_triggered_step, certificate_tag
from tests.fixtures_renewal import RenewalLab, RenewalRun

pytestmark = pytest.mark.prefect

EVENTS, ALERTS, COMMANDS = 20, 20, 10


def renewal_runs(name: str) -> list[Any]:
    """Every renewal run of `name`, however started."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[RENEWAL_FLOW])), limit=200
        )
    return [r for r in runs if r.parameters.get("name") == name]


def emit_expiring(name: str) -> None:
    from prefect.events import emit_event

    emit_event(
        event=EXPIRING_EVENT,
        resource={"prefect.resource.id": RESOURCE_PREFIX + name, "prefect.resource.name": name},
        payload={"name": name, "status": "critical", "days_left": 5},
    )


def renew_command(lab: RenewalLab, name: str) -> subprocess.Popen[bytes]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "certrenew"),
            "renew",
            name,
            "--config",
            str(lab.config),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def heard_events(lab: RenewalLab, name: str) -> int:
    """How many expiring events for `name` the serving process has logged a decision for."""
    log = (lab.home / "serve.log").read_text(errors="replace")
    return sum(
        1
        for line in log.splitlines()
        if f"event {EXPIRING_EVENT}" in line and f"for {name}:" in line
    )


def wait_for(what: str, probe: Any, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.5)
    raise AssertionError(what)


def trigger_all_at_once(lab: RenewalLab, names: list[str]) -> list[str]:
    """For each name: events, alerts posted to the serving process, `certrenew renew` processes.

    Returns the alerts' outcomes."""
    commands = [renew_command(lab, name) for name in names for _ in range(COMMANDS)]
    outcomes: list[str] = []
    start = threading.Barrier(len(names) * (EVENTS + ALERTS))

    def alert(name: str, index: int) -> None:
        start.wait()
        answer = httpx.post(
            f"{lab.intake_url}/alerts",
            json={"name": name, "source": f"test alert {index}"},
            headers={"Authorization": f"Bearer {lab.intake_token}"},
            timeout=300,
        )
        assert answer.status_code == 200, answer.text
        [done] = answer.json()["alerts"]
        outcomes.append(done["outcome"])

    def event(name: str) -> None:
        start.wait()
        emit_expiring(name)

    threads = [
        threading.Thread(target=alert, args=(name, i)) for name in names for i in range(ALERTS)
    ] + [threading.Thread(target=event, args=(name,)) for name in names for _ in range(EVENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for command in commands:
        out, _ = command.communicate(timeout=300)
        assert command.returncode == 0, out.decode()
    for name in names:
        wait_for(
            f"the serving process did not decide on every event for {name}",
            lambda name=name: heard_events(lab, name) >= EVENTS,
        )
    return outcomes


def test_fifty_requests_at_once_start_one_renewal_and_one_note(renewal_lab: RenewalLab) -> None:
    lab = renewal_lab
    name = "asked-fifty-times"
    lab.serve_certificate(name)

    outcomes = trigger_all_at_once(lab, [name])

    runs = renewal_runs(name)
    assert len(runs) == 1, [(r.name, r.state_name) for r in runs]
    [run] = runs
    assert certificate_tag(name) in run.tags
    assert outcomes.count("started") <= 1
    assert set(outcomes) <= {"started", "already_renewing"}, outcomes

    # The run opens the service-owner ticket and posts the day's note the requests left.
    RenewalRun(run.id).wait_paused("csr-1")
    tracker = lab.tracker()
    [owner] = tracker.find_tickets(f"{_label(run.id)}-owner")
    today = datetime.now(UTC).date()
    notes = [c for c in tracker.comments(owner.key) if step_marker(also_triggered_step(today)) in c]
    assert len(notes) == 1, tracker.comments(owner.key)

    # Another day's request is noted straight away, now that the ticket is open; once.
    tomorrow = today + timedelta(days=1)
    for index in range(3):
        again = admit_renewal(
            lab.settings,
            name,
            Trigger("command", f"test request {index}"),
            config=str(lab.config),
            today=tomorrow,
        )
        assert not again.started and again.run_id == str(run.id)
    later = [
        c for c in tracker.comments(owner.key) if step_marker(also_triggered_step(tomorrow)) in c
    ]
    assert len(later) == 1 and "test request 0" in later[0]
    assert len(renewal_runs(name)) == 1


def test_two_certificates_asked_at_once_get_one_renewal_each(renewal_lab: RenewalLab) -> None:
    lab = renewal_lab
    names = ["asked-first", "asked-second"]
    domains = {name: lab.serve_certificate(name)[0] for name in names}

    trigger_all_at_once(lab, names)

    from prefect import get_client

    for name in names:
        runs = renewal_runs(name)
        assert len(runs) == 1, (name, [(r.name, r.state_name) for r in runs])
        with get_client(sync_client=True) as client:
            assert open_renewal_run(client, name) is not None
        RenewalRun(runs[0].id).wait_paused("csr-1")
        [owner] = lab.tracker().find_tickets(f"{_label(runs[0].id)}-owner")
        assert domains[name] in owner.summary


def _label(run_id: Any) -> str | None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        label = client.read_flow_run(run_id).labels.get("certrenew.renewal")
    return str(label) if label else None
