"""How a renewal's steps run under Prefect: the run's context, stored results, waits.

A step's result is persisted under a key made of the renewal id, the step name
and the attempt number. A resumed run (which re-enters the flow from the top)
and a second run for the same renewal both get the stored result back instead
of repeating the side effect. The stored result is read straight from the
result store, without a new task run: the run's graph then shows each step once
however often the run was resumed, instead of one cached copy per resume.

When a step's outside system fails in a way a person can fix (Jira down, a
ticket deleted, SharePoint refusing, a bad file), the run does not fail: it
waits for a person with the reason in the form, and tries the step again when
resumed. That is declared once, here, for every step.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import replace
from itertools import count
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar, cast

from prefect import get_run_logger, task
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run, task_run

from certrenew.adapters.wiring import RenewalContext, renewal_context
from certrenew.config import load_settings
from certrenew.errors import (
    ArchiveError,
    AuthenticationError,
    CaError,
    CertificateError,
    NothingServed,
    ServiceUnavailable,
    TrackerError,
)
from certrenew.tasks import forms
from certrenew.tasks.prefect_api import patiently
from certrenew.tasks.waiting import WARM_WAIT, WarmWait

P = ParamSpec("P")
T = TypeVar("T")

# Failures a person can fix while the run waits; anything else is a bug and fails the run.
RECOVERABLE: tuple[type[Exception], ...] = (
    ServiceUnavailable,
    AuthenticationError,
    TrackerError,
    ArchiveError,
    CaError,
    CertificateError,
    NothingServed,
)


def context_for_this_run(config_path: str | None) -> RenewalContext:
    """The renewal's context as the flow run sees it: links in tickets lead to this run."""
    ctx = renewal_context(load_settings(Path(config_path) if config_path else None))
    WARM_WAIT.set(WarmWait(ctx.renewal.warm_wait_seconds, ctx.renewal.warm_wait_runs))
    return replace(ctx, run_url=run_page(flow_run.get_id(), ctx.renewal.flow_ui_url))


def run_page(run_id: str | None, ui_url: str | None) -> str:
    """A flow run's page in the Prefect UI, for links from tickets ('' outside a run)."""
    from prefect.settings import PREFECT_UI_URL

    base = ui_url or PREFECT_UI_URL.value()
    if not run_id:
        return ""
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base else run_id


RENEWAL_FLOW = "renew-certificate"

# The flow run label naming the renewal a run works on: `certrenew history` finds the
# runs of a renewal, and through the renewal's ticket labels its tickets, by it.
RENEWAL_LABEL = "certrenew.renewal"


def renewal_run_name() -> str:
    """`renew seu.example.cat · 3f9a1c`: the Runs page tells which certificate a run renews.

    The run id's first characters tell two renewals of one domain apart.
    """
    return run_name(str(flow_run.parameters.get("name", "")), flow_run.get_id() or "")


def run_name(certificate: str, run_id: str) -> str:
    return f"renew {certificate} · {run_id[:6]}".strip()


def mark_this_run(renewal: str, domain: str) -> None:
    """Label the running flow run with its renewal and name it after the domain.

    The run is named after the `name` it was started with (an inventory name or
    a domain) until step 0 knows the domain. Repeating either is harmless.
    """
    from uuid import UUID

    from prefect import get_client

    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        # Without its label nothing finds the run again (history, a later run's hand-over).
        patiently(
            lambda: client.update_flow_run_labels(UUID(run_id), {RENEWAL_LABEL: renewal}),
            "the run's renewal label",
        )
        name = run_name(domain, run_id)
        if flow_run.get_name() != name:
            patiently(lambda: client.update_flow_run(UUID(run_id), name=name), "the run's name")


def say(message: str) -> None:
    """One line in the runbook's words, in the run's Logs tab (the module's log outside a run).

    Steps say what they did once, when they do it: a replayed step is read from
    the result store and says nothing again.
    """
    try:
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = get_run_logger()
    except MissingContextError:
        logger = logging.getLogger("certrenew")
    logger.info(message)


CacheKey = Callable[[TaskRunContext, dict[str, Any]], str]


def step_result_key(renewal: str, step: str, attempt: int = 0) -> str:
    """Where a step's result is kept: per renewal, not per run, so any run of it finds it."""
    return f"{renewal}.{step}.{attempt}"


def _step_key(step: str) -> CacheKey:
    def key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
        return step_result_key(parameters["start"].id, step, parameters.get("attempt", 0))

    return key


class Step(Generic[P, T]):
    """A runbook step: a Prefect task whose result is kept per (renewal, step, attempt),
    and that waits for a person instead of failing when its outside system does.

    `fn` is the plain function, for tests that need no Prefect.
    """

    def __init__(self, name: str, fn: Callable[P, T], key: CacheKey | None = None) -> None:
        self.name = name
        self.fn = fn
        self._signature = inspect.signature(fn)
        self._key = key or _step_key(name)
        self._task = task(
            name=name,
            persist_result=True,
            cache_key_fn=self._key,
            log_prints=False,
            task_run_name=self._run_name,
        )(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        for failure in count(1):
            found, stored = self._stored(*args, **kwargs)
            if found:
                return stored
            try:
                return self._task(*args, **kwargs)
            except RECOVERABLE as exc:
                forms.wait_for_fix(self.name, self.wait_key(failure, *args, **kwargs), exc)
        raise AssertionError("unreachable")

    def _stored(self, *args: object, **kwargs: object) -> tuple[bool, T]:
        """The step's result kept by an earlier run or resume, read without a task run."""
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return self.stored_under(self._key(None, dict(bound.arguments)))  # type: ignore[arg-type]

    def stored_under(self, key: str) -> tuple[bool, T]:
        """The result kept under `key`, by whichever run of the renewal kept it."""
        from prefect.results import ResultStore, get_result_store

        store = cast(
            ResultStore,
            get_result_store().update_for_task(self._task, _sync=True),  # type: ignore[call-arg]
        )
        if not store.exists(key):
            return False, None  # type: ignore[return-value]
        return True, store.read(key).result

    def kept_for(self, renewal: str, attempt: int = 0) -> bool:
        """Whether this step finished for `renewal` (in any of its runs)."""
        return self.stored_under(step_result_key(renewal, self.name, attempt))[0]

    def _run_name(self) -> str:
        """`collect-certificate #2`, `check-answerer (ca-request)`: the step in the graph."""
        parameters = task_run.parameters
        if "attempt" in parameters:
            return f"{self.name} #{parameters['attempt']}"
        if "pause" in parameters:
            return f"{self.name} ({parameters['pause']})"
        return self.name

    def wait_key(self, failure: int, *args: object, **kwargs: object) -> str:
        """`wait-<step>[-<attempt>]-<failure>`: the call's own attempt is part of the key.

        A step called once per attempt (collect-certificate 1, 2, ...) must not
        find the wait of an earlier attempt already answered and skip its own.
        """
        attempt = self._signature.bind(*args, **kwargs).arguments.get("attempt")
        call = () if attempt is None else (attempt,)
        return forms.pause_key(forms.Question.WAIT, self.name, *call, failure)


def renewal_step(name: str, key: CacheKey | None = None) -> Callable[[Callable[P, T]], Step[P, T]]:
    """Declare a runbook step; the wrapped function takes `start` and optionally `attempt`
    (or names its own cache `key`)."""

    def wrap(fn: Callable[P, T]) -> Step[P, T]:
        return Step(name, fn, key)

    return wrap
