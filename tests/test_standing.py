"""Where an open renewal stands, from what the Prefect API says of its run (no Prefect)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from certrenew.standing import RunSnapshot, open_renewal

SINCE = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def snapshot(state_type: str, state_name: str, **changes: object) -> RunSnapshot:
    values: dict[str, object] = {
        "run_name": "brave-fox",
        "url": "http://prefect/runs/flow-run/1",
        "certificate": "seu",
        "renewal": "seu.example.cat-0a1b",
        "state_type": state_type,
        "state_name": state_name,
        "since": SINCE,
    }
    return RunSnapshot(**(values | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("run", "step", "state"),
    [
        (
            snapshot("PAUSED", "Suspended", pause_key="ca-request"),
            "3 CA request (ca-request)",
            "waiting for a person",
        ),
        (
            snapshot("PAUSED", "Suspended", pause_key="csr-reuse"),
            "1 CSR and key (reuse?) (csr-reuse)",
            "waiting for a person",
        ),
        (
            snapshot("PAUSED", "Suspended", pause_key="certificate-3"),
            "4 certificate (certificate-3)",
            "waiting for a person",
        ),
        (
            snapshot(
                "PAUSED",
                "Suspended",
                pause_key="wait-archive-artifacts-2",
                wait_reason="SharePoint refused the token",
            ),
            "waiting on archive-artifacts",
            "waiting for a fix: SharePoint refused the token",
        ),
        (
            snapshot("CRASHED", "Crashed", last_task="collect-certificate-0"),
            "collect-certificate-0",
            "crashed, resuming",
        ),
        (
            snapshot("SCHEDULED", "Scheduled", crashed_before=True, last_task="open-csr-ticket"),
            "open-csr-ticket",
            "crashed, resuming",
        ),
        (
            snapshot("SCHEDULED", "Late", crashed_before=True),
            "-",
            "crashed, resuming; late: no serving process or worker took it "
            "(is `certrenew serve` up?)",
        ),
        (snapshot("SCHEDULED", "Scheduled"), "-", "starting"),
        (
            snapshot("RUNNING", "Running", crashed_before=True, last_task="verify"),
            "verify",
            "running (resumed after a crash)",
        ),
        (snapshot("RUNNING", "Running", last_task="confirm-expiry"), "confirm-expiry", "running"),
    ],
)
def test_each_run_state_reads_as_a_step_and_a_state(run: RunSnapshot, step: str, state: str):
    renewal = open_renewal(run)
    assert (renewal.step, renewal.state) == (step, state)
    assert renewal.since == SINCE and renewal.certificate == "seu"


def test_a_run_before_step_0_has_no_renewal_yet():
    renewal = open_renewal(snapshot("PENDING", "Pending", renewal=""))
    assert renewal.renewal == "(not started yet)"
    assert renewal.as_dict()["since"] == SINCE.isoformat()
