"""A new renewal run hands over to the run of the same renewal that crashed or failed.

A renewal whose run was killed is carried on by retrying that same run (the
recovery automations do it, or Retry in the UI): it replays its stored steps
and the answers people gave it. A new run of the same certificate (the next
detection, an alert, `certrenew renew`) must not carry it on by itself: after
step 7 it sees the new certificate served and would stop as "already
renewed", leaving the old certificate unretired and the tickets open; before,
it would ask people again what they already answered. So step 0 looks for
that unfinished run and retries it instead, and the new run stops.

"Unfinished" is read from the renewal's stored step results, which are kept
per renewal, not per run: the earlier run's step 0 says which certificate it
was replacing, and a renewal whose tickets were closed is done whatever state
its run was left in. The earlier run carries on what the new one sees when
it renews the same certificate (the same old one is still served), or when
the new certificate is served and that renewal had asked for it to be
installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_client
from prefect.runtime import flow_run

from certrenew.renewal import RenewalStart
from certrenew.tasks.context import RENEWAL_LABEL, run_page, say
from certrenew.tasks.endpoints import confirm_expiry, confirm_key
from certrenew.tasks.guard import renewal_runs
from certrenew.tasks.rescheduling import schedule_again
from certrenew.tasks.tickets import close_tickets, open_install_ticket

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

HANDED_OVER = "handed over by a new run of the same renewal; resuming from its stored steps"


def stopped_renewal_runs(client: SyncPrefectClient, names: set[str]) -> list[FlowRun]:
    """Crashed and Failed renewal runs started for any of `names`, newest first."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    stopped = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.CRASHED, StateType.FAILED])
        )
    )
    runs = renewal_runs(
        client, flow_run_filter=stopped, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=200
    )
    return [run for run in runs if run.parameters.get("name") in names]


def renewal_of(run: FlowRun) -> RenewalStart | None:
    """What `run`'s step 0 found (None when it stopped before step 0 was kept)."""
    key = confirm_key(str(run.id), run.parameters.get("name"))
    found, start = confirm_expiry.stored_under(key)
    return start if found else None


def carries_on(earlier: RenewalStart, now: RenewalStart) -> bool:
    """Whether the earlier run's renewal is unfinished, and is the one `now` would do."""
    if earlier.already_renewed or close_tickets.kept_for(earlier.id):
        return False
    if earlier.id == now.id:
        return True
    return now.already_renewed and open_install_ticket.kept_for(earlier.id)


def hand_over(start: RenewalStart, ui_url: str | None) -> str | None:
    """Retry the crashed or failed run of this renewal, if any; the page of that run.

    Only a run that has not begun a renewal itself hands over: one resumed (or
    retried) after it began goes on with its own, whatever other run stopped.
    """
    me = flow_run.get_id()
    if me is None:
        return None
    with get_client(sync_client=True) as client:
        if RENEWAL_LABEL in (client.read_flow_run(UUID(me)).labels or {}):
            return None
        for run in stopped_renewal_runs(client, {start.name, start.domain}):
            if str(run.id) == me or run.deployment_id is None:
                continue  # a run without a deployment cannot be scheduled again
            earlier = renewal_of(run)
            if earlier is not None and carries_on(earlier, start):
                assert run.state is not None
                schedule_again(client, run.id, run.state.id, HANDED_OVER)
                page = run_page(str(run.id), ui_url)
                say(f"renewal {earlier.id} is unfinished in {page}: scheduled it again to go on")
                return page
    return None
