"""One renewal per certificate, whatever asks for it: the guard every trigger goes through.

Detection's events (heard by `certrenew serve`), monitors' alerts (its HTTP
intake) and `certrenew renew` call `admit_renewal`. The decision is made by
the Prefect server, atomically: the renewal run is created with an
idempotency key naming the certificate and its latest finished run
(certrenew.triggers.renewal_key), and the server's unique (flow,
idempotency key) index lets exactly one of any number of simultaneous
requests create it; the others get that same run back. A lock in one process
would not cover the command line, nor several machines.

A request that finds a renewal open is recorded on that renewal's
service-owner ticket, at most once per day. "Once" is decided the same way:
creating the day's claim (a Prefect variable, unique by name) succeeds for one
request only. When the ticket is not open yet (the run has just started), the
note waits in a second variable and the run posts it as soon as it opens the
ticket (`record_trigger` says why it is posted exactly once).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import count
from typing import TYPE_CHECKING, Any

from prefect import get_client
from prefect.runtime import flow_run

from certrenew.adapters.tracker import TicketTracker
from certrenew.adapters.wiring import RenewalContext, build_tracker
from certrenew.config import Settings
from certrenew.errors import PERSON_FIXABLE, CertRenewError, Transient
from certrenew.retry import RetryPolicy, retrying
from certrenew.tasks.context import RENEWAL_FLOW, RENEWAL_LABEL, run_page
from certrenew.tasks.tickets import post_once
from certrenew.templates import comments
from certrenew.triggers import (
    NOTE_PREFIX,
    TRIGGER_CONTEXT,
    Trigger,
    also_triggered_step,
    certificate_tag,
    claims_of,
    renewal_key,
    trigger_claim,
)

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun, Variable

log = logging.getLogger("certrenew.guard")

RENEWAL_DEPLOYMENT = f"{RENEWAL_FLOW}/renew-certificate"


@dataclass(frozen=True)
class Admission:
    """What the guard did with one request: started a renewal, or recorded it on the open one."""

    name: str
    started: bool
    run_id: str
    run_url: str
    note: str
    recorded_on: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "started": self.started,
            "run_id": self.run_id,
            "run_url": self.run_url,
            "note": self.note,
            "recorded_on": self.recorded_on,
        }


def admit_renewal(
    settings: Settings,
    name: str,
    trigger: Trigger,
    *,
    config: str | None,
    force: bool = False,
    urgent: bool = False,
    today: date | None = None,
) -> Admission:
    """Start the renewal of inventory certificate `name`, unless one is open already.

    `name` is the inventory name (callers resolve a domain to it first), so
    every trigger speaks of a certificate the same way. The whole decision is
    repeated when the Prefect API has a passing fault (its SQLite database
    busy under a burst of requests, a restart): asking twice is safe, that is
    the guard's point.
    """
    return retrying(
        lambda _: _admit_once(settings, name, trigger, config, force, urgent, today),
        PREFECT_RETRIES,
        describe=lambda gave_up: (
            f"the Prefect API failed {gave_up.attempts} times ({gave_up.last.reason}); "
            f"nothing was started for {name}: ask again once it answers"
        ),
        classify=prefect_transient,
    )


PREFECT_RETRIES = RetryPolicy(attempts=5, base_delay_seconds=0.5, max_delay_seconds=8)


def prefect_transient(exc: Exception) -> Transient | None:
    """5xx and 429 answers and network errors of the Prefect API are worth another try."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        status = exc.response.status_code
        if status >= 500 or status == 429:
            return Transient(f"Prefect API answered {status}")
    if isinstance(exc, httpx.TransportError):
        return Transient(f"Prefect API unreachable ({type(exc).__name__})")
    return None


def _admit_once(
    settings: Settings,
    name: str,
    trigger: Trigger,
    config: str | None,
    force: bool,
    urgent: bool,
    today: date | None,
) -> Admission:
    from prefect.exceptions import ObjectNotFound

    ui_url = settings.renewal.flow_ui_url if settings.renewal else None
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(RENEWAL_DEPLOYMENT)
        except ObjectNotFound:
            from prefect.settings import PREFECT_API_URL

            raise CertRenewError(
                "no renewal deployment on the Prefect server at "
                f"{PREFECT_API_URL.value() or '(none)'}: start `certrenew serve` there, and set "
                "PREFECT_API_URL to that server here"
            ) from None
        # A run that finishes between our look and our create makes the key name a
        # finished run; looking again settles it (the history only moves forward).
        for _ in range(3):
            # The latest run first, then the open ones: a run another request creates in
            # between is either seen open, or was keyed after the same latest run as ours.
            latest = latest_renewal_run(client, name)
            if (open_run := open_renewal_run(client, name)) is not None:
                return record_trigger(settings, client, open_run, trigger, today)
            run = client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"name": name, "config": config, "force": force, "urgent": urgent},
                tags=[certificate_tag(name)],
                idempotency_key=renewal_key(name, str(latest.id) if latest else None),
                context={TRIGGER_CONTEXT: trigger.as_dict()},
            )
            if created_by(run) == trigger.id:
                url = run_page(str(run.id), ui_url)
                return Admission(name, True, str(run.id), url, f"renewal started: {url}")
            if run.state is None or not run.state.is_final():
                return record_trigger(settings, client, run, trigger, today)
    raise CertRenewError(
        f"the renewal runs of {name} changed while starting one: ask again in a moment"
    )


def created_by(run: FlowRun) -> str:
    """The id of the trigger that created `run` ('' for runs the guard did not create)."""
    made = (run.context or {}).get(TRIGGER_CONTEXT)
    return str(made.get("id", "")) if isinstance(made, dict) else ""


def renewal_runs(client: SyncPrefectClient, **filters: Any) -> list[FlowRun]:
    """Runs of the renewal flow matching `filters` (`read_flow_runs`' own)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    return client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[RENEWAL_FLOW])), **filters
    )


def unfinished_renewal_runs(client: SyncPrefectClient) -> Iterator[FlowRun]:
    """Every renewal run not finished yet, oldest first, however it was started.

    A Crashed run counts as finished: a new run of the same renewal carries it
    on from its stored step results.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    unfinished = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(
                not_any_=[
                    StateType.COMPLETED,
                    StateType.FAILED,
                    StateType.CANCELLED,
                    StateType.CRASHED,
                ]
            )
        )
    )
    page = 200
    for offset in count(0, page):
        runs = renewal_runs(
            client,
            flow_run_filter=unfinished,
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=page,
            offset=offset,
        )
        yield from runs
        if len(runs) < page:
            return


def open_renewal_run(client: SyncPrefectClient, name: str, *aliases: str) -> FlowRun | None:
    """The oldest unfinished renewal run of `name` (or of its `aliases`, e.g. its domain).

    Runs are matched by their `name` parameter, not only by the guard's tag, so
    a run started from the Prefect UI counts as open too.
    """
    names = {name, *aliases}
    return next(
        (run for run in unfinished_renewal_runs(client) if run.parameters.get("name") in names),
        None,
    )


def older_open_run(name: str, domain: str, ui_url: str | None) -> str | None:
    """The page of an older unfinished renewal run of this certificate, seen from a run.

    The guard starts one run per certificate; a run started some other way
    (the Prefect UI, a deployment trigger) checks here at step 0 and stops
    when an older one is open, scheduled again after a crash included.
    """
    with get_client(sync_client=True) as client:
        oldest = open_renewal_run(client, name, domain)
    if oldest is None or str(oldest.id) == flow_run.get_id():
        return None
    return run_page(str(oldest.id), ui_url)


def latest_renewal_run(client: SyncPrefectClient, name: str) -> FlowRun | None:
    """The newest renewal run the guard started for `name` (finished, when none is open)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    runs = renewal_runs(
        client,
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[certificate_tag(name)])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=1,
    )
    return runs[0] if runs else None


def owner_ticket(settings: Settings, run: FlowRun) -> str | None:
    """The service-owner ticket of the renewal `run` works on, once the run has opened it."""
    renewal = (run.labels or {}).get(RENEWAL_LABEL)
    if not renewal:
        return None
    found = build_tracker(settings).find_tickets(f"{renewal}-owner")
    return found[0].key if found else None


def record_trigger(
    settings: Settings,
    client: SyncPrefectClient,
    run: FlowRun,
    trigger: Trigger,
    today: date | None = None,
) -> Admission:
    """Note on the open renewal's ticket that `trigger` asked too: the day's first asker only.

    The first asker of the day creates the day's claim and the note to post. The
    note is posted by whoever deletes it first: this request when the run's
    ticket is open, else the run right after it opens the ticket. Either the
    request sees the ticket or the run, which looks after opening it, sees the
    note; a delete succeeds once, so the note is posted once.
    """
    from prefect.client.schemas.actions import VariableCreate
    from prefect.exceptions import ObjectAlreadyExists

    day = today or datetime.now(UTC).date()
    name = str(run.parameters.get("name", ""))
    url = run_page(str(run.id), settings.renewal.flow_ui_url if settings.renewal else None)
    try:
        client.create_variable(
            VariableCreate(name=trigger_claim(str(run.id), day), value=trigger.as_dict())
        )
    except ObjectAlreadyExists:
        return Admission(
            name, False, str(run.id), url, f"already being renewed ({url}); noted today already"
        )
    note = trigger_claim(str(run.id), day, NOTE_PREFIX)
    client.create_variable(VariableCreate(name=note, value=trigger.as_dict()))
    forget_earlier_claims(client, str(run.id), day)
    # Read the run again: it may have opened its ticket since it was found open.
    ticket = owner_ticket(settings, client.read_flow_run(run.id))
    posted = ticket is not None and _post_note(
        client, note, build_tracker(settings), ticket, trigger, day, url
    )
    where = (
        f"noted on {ticket}"
        if posted
        else f"noted for {ticket or 'its ticket'}; the run posts it as it opens that ticket"
    )
    return Admission(
        name, False, str(run.id), url, f"already being renewed ({url}); {where}", ticket
    )


def _post_note(
    client: SyncPrefectClient,
    note: str,
    tracker: TicketTracker,
    ticket: str,
    trigger: Trigger,
    day: date,
    run_url: str,
) -> bool:
    """Take the note (delete it) and post it; False when someone else took it first."""
    from prefect.client.schemas.actions import VariableCreate
    from prefect.exceptions import ObjectNotFound

    try:
        client.delete_variable_by_name(note)
    except ObjectNotFound:
        return False
    try:
        post_once(
            tracker,
            ticket,
            also_triggered_step(day),
            comments.also_triggered(trigger.source, trigger.at),
            run_url=run_url,
        )
    except PERSON_FIXABLE as exc:  # the tracker failed: put the note back for the run
        log.warning("note on %s not posted yet: %s", ticket, exc)
        client.create_variable(VariableCreate(name=note, value=trigger.as_dict()))
        return False
    return True


def _variables(client: SyncPrefectClient, prefix: str) -> list[Variable]:
    from prefect.client.schemas.objects import Variable

    response = client.request(
        "POST",
        "/variables/filter",
        json={"variables": {"name": {"like_": prefix}}, "limit": 200},
    )
    found = Variable.model_validate_list(response.json())
    return [v for v in found if v.name.startswith(prefix)]


def _claim_day(variable: Variable) -> date:
    return datetime.strptime(variable.name.rsplit("-", 1)[1], "%Y%m%d").date()


def forget_earlier_claims(client: SyncPrefectClient, run_id: str, day: date) -> None:
    """Claims of earlier days have done their job; keep the variables list short."""
    from prefect.exceptions import ObjectNotFound

    for variable in _variables(client, claims_of(run_id)):
        if _claim_day(variable) < day:
            with suppress(ObjectNotFound):  # another request forgot it first
                client.delete_variable_by_name(variable.name)


def post_pending_triggers(ctx: RenewalContext, ticket: str) -> None:
    """Post the notes of requests that arrived before this run had opened `ticket`.

    Called by the flow right after it opens the service-owner ticket, on every
    (re)entry; each day's note is posted once, marked with its day. A note is
    no reason to stop a renewal: when the tracker or the Prefect API fails
    here, the notes wait for the run's next entry.
    """
    from prefect import get_run_logger

    run_id = flow_run.get_id()
    if not run_id:
        return
    try:
        _post_pending(ctx, ticket, run_id)
    except Exception as exc:
        get_run_logger().warning(
            "requests noted for %s not posted yet (%s); they are posted when the run next resumes",
            ticket,
            exc,
        )


def _post_pending(ctx: RenewalContext, ticket: str, run_id: str) -> None:
    with get_client(sync_client=True) as client:
        for variable in _variables(client, claims_of(run_id, NOTE_PREFIX)):
            value = variable.value
            asked = Trigger.from_dict(
                {k: str(v) for k, v in value.items()} if isinstance(value, dict) else {}
            )
            _post_note(
                client,
                variable.name,
                ctx.tracker,
                ticket,
                asked,
                _claim_day(variable),
                ctx.run_url,
            )
