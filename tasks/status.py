"""Reads the open renewals from the Prefect API for `certrenew status`.

Thin on purpose: it fetches the renewal flow's unfinished runs (a crashed one
included: it is about to be resumed), their states and the step running, and
certrenew.standing says where each stands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from certrenew.errors import ConfigError
from certrenew.standing import OpenRenewal, RunSnapshot, open_renewal
from certrenew.tasks.context import RENEWAL_FLOW, RENEWAL_LABEL, run_page
from certrenew.tasks.forms import wait_reason
from certrenew.tasks.history import PAGE, prefect_api
from certrenew.tasks.waiting import question_keyset

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun, State

OPEN_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING", "CRASHED")


def open_renewals(ui_url: str | None) -> list[OpenRenewal]:
    """Every renewal run that has not ended, the longest waiting first."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError(
            "PREFECT_API_URL is not set: point it at the Prefect server the renewals run on "
            "(e.g. http://127.0.0.1:4200/api)"
        )
    open_filter = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType(s) for s in OPEN_STATES])
        )
    )
    with get_client(sync_client=True) as client:

        def page(offset: int) -> list[FlowRun]:
            return prefect_api(
                lambda: client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[RENEWAL_FLOW])),
                    flow_run_filter=open_filter,
                    limit=PAGE,
                    offset=offset,
                )
            )

        runs: list[FlowRun] = []
        while len(batch := page(len(runs))) == PAGE:
            runs += batch
        runs += batch
        found = [open_renewal(_snapshot(client, run, ui_url)) for run in runs if run.state]
    return sorted(found, key=lambda renewal: renewal.since)


def _snapshot(client: SyncPrefectClient, run: FlowRun, ui_url: str | None) -> RunSnapshot:
    from prefect.input.actions import read_flow_run_input

    state = run.state
    assert state is not None
    pause_key = (state.state_details.pause_key or "") if state.is_paused() else ""
    reason = ""
    if pause_key.startswith("wait-"):
        description = read_flow_run_input(
            question_keyset(state)["description"], flow_run_id=run.id
        )
        reason = wait_reason(str(description or ""))
    return RunSnapshot(
        run_name=run.name,
        url=run_page(str(run.id), ui_url),
        certificate=str(run.parameters.get("name", "")),
        renewal=str(run.labels.get(RENEWAL_LABEL, "")),
        state_type=state.type.value,
        state_name=state.name or "",
        since=_utc(state.timestamp),
        pause_key=pause_key,
        wait_reason=reason,
        last_task="" if pause_key else _last_task(client, run),
        crashed_before=_crashed_since_last_wait(client, run),
    )


def _last_task(client: SyncPrefectClient, run: FlowRun) -> str:
    """The name of the step the run started last (the one running, or about to be replayed)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    tasks = prefect_api(
        lambda: client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            sort=TaskRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    )
    return tasks[0].name if tasks else ""


def _crashed_since_last_wait(client: SyncPrefectClient, run: FlowRun) -> bool:
    """Whether the run crashed since it last waited for a person (or since it started)."""
    states: list[State] = sorted(
        prefect_api(lambda: client.read_flow_run_states(run.id)), key=lambda s: s.timestamp
    )
    crashed = False
    for state in states:
        if state.is_paused():
            crashed = False
        elif state.is_crashed():
            crashed = True
    return crashed


def _utc(moment: datetime) -> datetime:
    return datetime.fromisoformat(moment.isoformat()).astimezone(UTC)
