"""Where each open renewal stands, said the way support staff ask it.

Plain values in, one line per renewal out: the reading of the Prefect API is
in certrenew.tasks.status. A renewal is open while its run has not ended, and
a crashed run counts as open: the recovery automation schedules it again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

# The runbook step (RUNBOOK.md) each question belongs to, by the question's pause key
# prefix; the longest prefix wins (`csr-reuse` before `csr`).
QUESTION_STEPS = {
    "csr-reuse": "1 CSR and key (reuse?)",
    "csr": "1 CSR and key",
    "ca-choice": "2 CA choice",
    "urgent-approval": "3 CA request (urgent approval)",
    "ca-request": "3 CA request",
    "certificate": "4 certificate",
    "p12": "4 certificate (.p12)",
    "install": "7 verify installation",
    "retire": "8 retire the old certificate",
}


@dataclass(frozen=True)
class RunSnapshot:
    """What the Prefect API says of one unfinished renewal run."""

    run_name: str
    url: str
    certificate: str
    renewal: str
    state_type: str  # Prefect's StateType value: RUNNING, PAUSED, SCHEDULED, CRASHED, ...
    state_name: str  # Running, Suspended, Scheduled, Late, Crashed, ...
    since: datetime
    pause_key: str = ""
    wait_reason: str = ""
    last_task: str = ""
    crashed_before: bool = False


@dataclass(frozen=True)
class OpenRenewal:
    certificate: str
    renewal: str
    step: str
    since: datetime
    state: str
    run: str
    url: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"since": self.since.isoformat()}


def step_of(snapshot: RunSnapshot) -> str:
    """The runbook step: the question asked, else the step running, else '-'."""
    key = snapshot.pause_key
    if key.startswith("wait-"):
        return f"waiting on {key.removeprefix('wait-').rstrip('-0123456789')}"
    for prefix in sorted(QUESTION_STEPS, key=len, reverse=True):
        if key == prefix or key.startswith(prefix + "-"):
            return f"{QUESTION_STEPS[prefix]} ({key})"
    return snapshot.last_task or "-"


def state_of(snapshot: RunSnapshot) -> str:
    """The run's state in words, crashes first: they are what a person must know of."""
    kind = snapshot.state_type
    if kind == "CRASHED":
        return "crashed, resuming"
    if kind == "PAUSED":
        if snapshot.pause_key.startswith("wait-"):
            return f"waiting for a fix: {snapshot.wait_reason}" if snapshot.wait_reason else (
                "waiting for a fix"
            )
        return "waiting for a person"
    if kind in {"SCHEDULED", "PENDING"}:
        said = "crashed, resuming" if snapshot.crashed_before else "starting"
        if snapshot.state_name == "Late":
            said += "; late: no serving process or worker took it (is `certrenew serve` up?)"
        return said
    if kind == "RUNNING":
        return "running (resumed after a crash)" if snapshot.crashed_before else "running"
    return snapshot.state_name.lower() or kind.lower()


def open_renewal(snapshot: RunSnapshot) -> OpenRenewal:
    return OpenRenewal(
        certificate=snapshot.certificate,
        renewal=snapshot.renewal or "(not started yet)",
        step=step_of(snapshot),
        since=snapshot.since,
        state=state_of(snapshot),
        run=snapshot.run_name,
        url=snapshot.url,
    )
