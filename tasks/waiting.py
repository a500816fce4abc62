"""Waiting for an answer: a short while with the run's process, then without one.

A question suspends the run: the Resume form is shown, and a renewal that waits
days holds no process. But a run resumed after a suspension starts in a new
Python process (Prefect's imports, the replay of the finished steps): seconds
that a person answering forms one after the other would wait every time. So
for `[renewal] warm_wait_seconds` after asking, the run is Paused instead, the
same form under the same stored answer's key, and its process waits:

- answered within the window: Prefect resumes a paused run in its own
  process, which goes on at once;
- no answer within the window: the process suspends the run under the same
  question (the form stays, nothing changes for the person) and exits; a later
  answer starts the run in a new process, which replays its steps as before.
  So does a question asked while `[renewal] warm_wait_runs` runs already wait
  so: each holds a process slot of the serving process;
- the process dies within the window: the serving process marks the run
  Crashed (or, when it died too, the missing heartbeats do), and the recovery
  (certrenew.deployments.recovery) starts it again: it asks the same question;
- the Prefect API stops answering for UNREACHABLE_SECONDS: the process exits
  as a crashed one does (it could neither see an answer nor suspend the run),
  leaving the run Paused; once the server is back, the serving process (or
  worker) marks it Crashed, or the missing heartbeats do, as for a process
  that died;
- the serving process stops (a restart): Prefect's runner would cancel the
  run, and its question with it. `certrenew serve` first sends LEAVE_SIGNAL to
  its runs waiting so, and each suspends under its question at once, as at the
  window's end (certrenew.deployments.serve).
"""

from __future__ import annotations

import signal
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, cast

from prefect.input import RunInput

from certrenew.tasks.prefect_api import unanswered

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import State
    from prefect.context import FlowRunContext
    from prefect.input.run_input import Keyset

R = TypeVar("R", bound=RunInput)


@dataclass(frozen=True)
class WarmWait:
    """How long a run's process waits after asking (0: suspended at once), and how many
    runs of the flow may wait so at most, together."""

    seconds: float = 0.0
    most_runs: int = 0


# Set for the run by certrenew.tasks.context from `[renewal] warm_wait_seconds` and
# `warm_wait_runs`.
WARM_WAIT: ContextVar[WarmWait | None] = ContextVar("certrenew_warm_wait", default=None)

# How often the waiting process looks whether its run was resumed: at most this long
# between a person's submit and the run going on.
LOOK_SECONDS: Final = 0.25
# How long one look may take, and how long the waiting process goes on looking while
# the Prefect API does not answer (a server restart fits in it); then it exits.
LOOK_TIMEOUT_SECONDS: Final = 10.0
UNREACHABLE_SECONDS: Final = 60.0

# Sent by a stopping `certrenew serve` to its runs that wait warm: end the window now.
LEAVE_SIGNAL: Final = signal.SIGUSR1
_leaving = threading.Event()


def leave_warm_waits_on_signal() -> None:
    """From now on LEAVE_SIGNAL ends this process's warm waits, and any later one, at once.

    Installed in the process runs are forked from (certrenew.deployments.run_process),
    so every run's process has it before its first step.
    """
    signal.signal(LEAVE_SIGNAL, lambda *_: _leaving.set())


def suspension_keyset(key: str) -> Keyset:
    """Where the form and its answer are kept: the suspension's keys, in both phases.

    Replays (certrenew.tasks.forms.stored_answer) find the answer there however
    it was given.
    """
    from prefect.input.run_input import keyset_from_paused_state
    from prefect.states import Suspended

    return keyset_from_paused_state(Suspended(pause_key=key))


def question_keyset(state: State[Any]) -> Keyset:
    """The keys of the form a paused or suspended run shows, as the server keeps them.

    A state names its own keys; Prefect derives them from the state's name
    otherwise, which would differ between the two phases of one question.
    """
    from prefect.input.run_input import keyset_from_paused_state

    stored = state.state_details.run_input_keyset
    return cast("Keyset", stored) if stored else keyset_from_paused_state(state)


def waits_warm(warm: WarmWait | None) -> bool:
    """Whether this run's process may wait: a window, and fewer such waits than allowed.

    Every process waiting holds a slot of `certrenew serve --process-limit`: a
    cap keeps slots for runs to start and resume when many ask at once.
    """
    if warm is None or warm.seconds <= 0 or warm.most_runs <= 0 or _leaving.is_set():
        return False
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        waiting = client.count_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_run.get_flow_name()])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"]))
            ),
        )
    return waiting < warm.most_runs


def pause_and_wait(form: type[R], key: str, description: str, window: float) -> R:
    """Ask `form` under the pause `key` and wait `window` s in this process; then suspend."""
    from prefect import get_client, get_run_logger
    from prefect.context import FlowRunContext
    from prefect.exceptions import Abort
    from prefect.states import Paused
    from prefect.utilities.engine import propose_state_sync

    context = FlowRunContext.get()
    assert context and context.flow_run, "a question is asked inside a flow run"
    run_id = context.flow_run.id
    keyset = suspension_keyset(key)
    proposed: State[None] = Paused(reschedule=False, pause_key=key)
    proposed.state_details.run_input_keyset = {str(k): value for k, value in keyset.items()}
    with get_client(sync_client=True) as client:
        try:
            state = propose_state_sync(client, proposed, flow_run_id=run_id)
        except Abort as exc:
            raise RuntimeError(f"the run cannot wait at '{key}': {exc}") from exc
        if not state.is_paused():
            raise RuntimeError(f"the run cannot wait at '{key}': the server said {state}")
        form.with_initial_data(description=description).save(keyset)
        _say_alive(context)
        get_run_logger().info(
            "Asked '%s': this process waits %.0f s for the answer, then the run is suspended",
            key,
            window,
        )
        if _resumed_within(run_id, window) or _take_back(client, run_id, keyset, key):
            # Called from sync code: the answer itself, not the coroutine async_dispatch allows.
            return cast(R, form.load(keyset))
    return suspend_at(form, key, description)


def _resumed_within(run_id: UUID, window: float) -> bool:
    """Whether a person resumed the paused run within `window` seconds.

    Each look is one request without Prefect's own retries (which wait a minute
    and more per request): an API that does not answer for UNREACHABLE_SECONDS
    ends the process (`_give_up`). The window ends only on a look that was
    answered, so that the run can still be suspended.
    """
    from prefect import get_client
    from prefect.exceptions import Abort
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    deadline = time.monotonic() + window
    answered = time.monotonic()
    with (
        temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}),
        get_client(sync_client=True, httpx_settings={"timeout": LOOK_TIMEOUT_SECONDS}) as client,
    ):
        while True:
            time.sleep(LOOK_SECONDS)
            if _leaving.is_set():
                return False
            try:
                state = client.read_flow_run(run_id).state
            except Exception as exc:
                if not unanswered(exc):
                    raise
                if time.monotonic() - answered < UNREACHABLE_SECONDS:
                    continue
                _give_up(exc)
            answered = time.monotonic()
            if state is not None and state.is_running():
                return True
            if state is not None and not state.is_paused():
                raise Abort(f"the run left its wait as {state.name}: this process stops")
            if answered >= deadline:
                return False


def _give_up(exc: Exception) -> NoReturn:
    """End this process as a crash does: exit status 1, no state proposed.

    Prefect's engine would propose a Failed state for an exception and retry
    that for minutes with the API gone; reached, Failed would end the renewal.
    The run stays Paused instead; the serving process (or worker) sees the exit
    status and marks it Crashed once it reaches the server, or the missing
    heartbeats do, and the recovery starts it again: nothing is lost.
    """
    import os
    import sys

    from prefect import get_run_logger

    get_run_logger().warning(
        "The Prefect API has not answered for %.0f s (%s): this process stops; the run "
        "stays Paused at its question, and the recovery starts it again once the server "
        "is back",
        UNREACHABLE_SECONDS,
        type(exc).__name__,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _take_back(client: SyncPrefectClient, run_id: UUID, keyset: Keyset, key: str) -> bool:
    """Leave the pause to suspend instead; True when an answer came at that moment.

    A paused run can only be suspended from Running, and Prefect suspends under
    a key once per attempt: the key is given back so that the suspension asks
    the same question under the same key.
    """
    from prefect.input.actions import read_flow_run_input
    from prefect.states import Running
    from prefect.utilities.engine import propose_state_sync

    propose_state_sync(client, Running(), flow_run_id=run_id)
    if read_flow_run_input(keyset["response"], flow_run_id=run_id) is not None:
        return True
    _forget_pause(client, run_id, key)
    return False


def ask_again(key: str) -> None:
    """Let this run ask under `key`, which it asked before without getting an answer.

    Prefect refuses a pause or suspension under a key the run has seen, and
    forgets them only when a crashed run is scheduled again through its rules:
    a run started again by a forced state change (Retry in the UI) kept them,
    and the question asked before the crash failed the run ("the server said
    Running()").
    """
    from uuid import UUID

    from prefect import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    assert run_id, "a question is asked inside a flow run"
    with get_client(sync_client=True) as client:
        _forget_pause(client, UUID(run_id), key)


def _forget_pause(client: SyncPrefectClient, run_id: UUID, key: str) -> None:
    run = client.read_flow_run(run_id)
    seen = run.empirical_policy.pause_keys or set()
    if key in seen:
        policy = run.empirical_policy.model_copy()
        policy.pause_keys = seen - {key}
        client.update_flow_run(run_id, empirical_policy=policy)


def suspend_at(form: type[R], key: str, description: str) -> R:
    """Suspend the run at `key` with `form`: the process exits, the answer resumes the run."""
    from prefect.flow_runs import suspend_flow_run

    return suspend_flow_run(
        wait_for_input=form.with_initial_data(description=description), key=key, timeout=None
    )


def _say_alive(context: FlowRunContext) -> None:
    """A heartbeat right after pausing.

    The recovery's silent-run automation stops expecting heartbeats at the
    Paused event; this one makes it expect them again while this process
    waits, so a process that dies within the window is still found out.
    """
    from prefect.events import emit_event

    run = context.flow_run
    assert run
    emit_event(
        event="prefect.flow-run.heartbeat",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run.id}",
            "prefect.resource.name": run.name,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{run.flow_id}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": context.flow.name if context.flow else "",
            }
        ],
    )
