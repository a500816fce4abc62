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

from certrenew.config import Settings, load_settings
from tasks.tracker import TicketTracker
from tasks.wiring import ArchiveSetup, build_archive, build_tracker

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
    run_id = flow_run.get_id()
    if not run_id:
        return ""
    base = settings.renewal.flow_ui_url if settings.renewal else None
    if base:
        return f"{base.rstrip('/')}/runs/flow-run/{run_id}"
    return flow_run.get_flow_run_ui_url() or ""


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
