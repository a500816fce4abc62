"""A step waiting because its system was away is tried again by the serving process itself.

When Jira, SharePoint or the CA is down, slow or throttling, the step ends in
ServiceUnavailable and the run waits with a form (certrenew.tasks.forms
`wait_for_fix`) that a person submits once the system is back. Outages end on
their own, mostly at night: so `certrenew serve` also looks, every few
seconds, for renewal runs waiting with such a form, and after `[recovery]
outage_retry_seconds` (doubling for each failure of the same wait, up to eight
times) submits it itself, as "certrenew (retried by itself)". If the system is
still away the step fails again and a new wait begins, with the longer pause.
Waits a person must act on (a ticket deleted, credentials refused, a bad
certificate) are never answered: their form lacks the line that allows it.

Answering goes through the same API as the Resume button, so the run's
history shows who retried, and a person submitting first simply wins.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from certrenew.config import RecoverySettings
from certrenew.tasks.forms import RETRY_ANSWERER, WaitAction, open_question, retries_by_itself
from certrenew.tasks.guard import renewal_runs

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

log = logging.getLogger("certrenew.serve")

MAX_DOUBLINGS = 3  # the pause grows to eight times outage_retry_seconds, no further
LOOK_EVERY_SECONDS = 30.0


def pause_before_retry(key: str, base_seconds: float) -> timedelta:
    """How long the wait `key` (`wait-<step>[-<attempt>]-<failure>`) lasts before a retry."""
    found = re.search(r"-(\d+)$", key)
    failure = int(found[1]) if found else 1
    return timedelta(seconds=base_seconds * 2 ** min(max(failure - 1, 0), MAX_DOUBLINGS))


def retry_waiting_steps(settings: RecoverySettings, now: datetime | None = None) -> list[UUID]:
    """Submit every wait form whose system was away and whose pause is over; the runs."""
    from prefect import get_client

    if settings.outage_retry_seconds <= 0:
        return []
    moment = now or datetime.now(UTC)
    retried = []
    with get_client(sync_client=True) as client:
        for run_id, key, since in _waiting_runs(client):
            if since + pause_before_retry(key, settings.outage_retry_seconds) > moment:
                continue
            question = open_question(run_id)
            if question is None or question.key != key:
                continue
            if not retries_by_itself(question.description):
                continue
            if _resume(run_id, key):
                retried.append(run_id)
    return retried


def _waiting_runs(client: SyncPrefectClient) -> list[tuple[UUID, str, datetime]]:
    """(run, pause key, since) of every renewal run waiting with a wait form."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = renewal_runs(
        client,
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
        ),
        limit=200,
    )
    waiting = []
    for run in runs:
        state = run.state
        key = state.state_details.pause_key if state is not None else None
        if state is not None and key and key.startswith("wait-"):
            waiting.append((run.id, key, state.timestamp.astimezone(UTC)))
    return waiting


def _resume(run_id: UUID, key: str) -> bool:
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(
            run_id, run_input={"action": WaitAction.CHECK.value, "answered_by": RETRY_ANSWERER}
        )
    except Exception as exc:  # answered meanwhile by a person, or the API is away: next round
        log.info("run %s (%s) not retried this time: %s", run_id, key, exc)
        return False
    log.info("run %s (%s): its system was away; step tried again", run_id, key)
    return True


def _keep_retrying(settings: RecoverySettings) -> None:
    every = min(LOOK_EVERY_SECONDS, max(settings.outage_retry_seconds / 2, 1.0))
    while True:
        try:
            retry_waiting_steps(settings)
        except Exception as exc:  # the Prefect API away: the next round tries again
            log.warning("waiting steps not checked (%s); again in %g s", exc, every)
        time.sleep(every)


def start_retrying(settings: RecoverySettings) -> threading.Thread | None:
    """Retry waiting steps in a thread of this process for as long as it runs (off: None)."""
    if settings.outage_retry_seconds <= 0:
        return None
    thread = threading.Thread(
        target=_keep_retrying, args=(settings,), name="certrenew-outage-retry", daemon=True
    )
    thread.start()
    return thread
