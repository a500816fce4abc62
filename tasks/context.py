"""What every renewal step gets: settings, the wired backends, and how steps are cached.

A step's result is persisted under a key made of the renewal id, the step name
and the attempt number. A resumed run (which re-enters the flow from the top)
and a second run for the same renewal both get the stored result back instead
of repeating the side effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import task
from prefect.context import TaskRunContext
from prefect.runtime import flow_run

from certrenew.adapters.tracker import TicketTracker
from certrenew.adapters.wiring import ArchiveSetup, build_archive, build_tracker
from certrenew.config import Settings, load_settings

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class RenewalContext:
    settings: Settings
    tracker: TicketTracker
    archive: ArchiveSetup
    run_url: str


def renewal_context(config_path: str | None) -> RenewalContext:
    settings = load_settings(Path(config_path) if config_path else None)
    settings.for_renewal()  # fail at the start, not after three days, if a section is missing
    return RenewalContext(
        settings=settings,
        tracker=build_tracker(settings),
        archive=build_archive(settings),
        run_url=current_run_url(settings),
    )


def current_run_url(settings: Settings) -> str:
    """The flow run's page in the Prefect UI, for links from tickets ('' outside a run)."""
    return run_page(flow_run.get_id(), settings)


def run_page(run_id: str | None, settings: Settings) -> str:
    from prefect.settings import PREFECT_UI_URL

    base = (settings.renewal.flow_ui_url if settings.renewal else None) or PREFECT_UI_URL.value()
    if not run_id:
        return ""
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base else run_id


def _step_key(step: str) -> Callable[[TaskRunContext, dict[str, Any]], str]:
    def key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
        return f"{parameters['start'].id}.{step}.{parameters.get('attempt', 0)}"

    return key


def renewal_step(step: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """A Prefect task whose result is kept per (renewal, step, attempt).

    The wrapped function takes `start` (a RenewalStart) and optionally `attempt`.
    """

    def wrap(func: Callable[P, T]) -> Callable[P, T]:
        return task(  # type: ignore[return-value]
            func,
            name=step,
            persist_result=True,
            cache_key_fn=_step_key(step),
            log_prints=False,
        )

    return wrap


def other_active_run(name: str, settings: Settings) -> str | None:
    """The page of another unfinished renewal run of the same certificate, if any.

    Detection announces an expiring certificate every day until it is renewed;
    only the oldest unfinished run goes on, later ones stop at once.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    me = flow_run.get_id()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_run.get_flow_name()])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.RUNNING, StateType.PAUSED, StateType.PENDING]
                    )
                )
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
    for run in runs:
        if str(run.id) == me:
            return None  # the oldest unfinished run is this one
        if run.parameters.get("name") == name:
            return run_page(str(run.id), settings)
    return None
