"""When a crashing renewal run stops being retried by itself (pure rules, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect.client.schemas.objects import State
from prefect.states import Crashed, Running, Suspended

from certrenew.tasks.crashes import count_crashes, crash_loop_reason

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(hours_ago: float, state: State) -> State:
    state.timestamp = NOW - timedelta(hours=hours_ago)
    return state


def test_only_crashes_within_the_window_count_towards_the_bound() -> None:
    states = [
        at(30, Crashed(message="old")),
        at(5, Running()),
        at(4, Crashed(message="killed")),
        at(3, Suspended()),
        at(1, Crashed(message="no heartbeat")),
    ]
    count = count_crashes(states, NOW - timedelta(hours=24))
    assert (count.total, count.recent, count.last_message) == (3, 2, "no heartbeat")
    assert crash_loop_reason(count, max_retries=2, window_hours=24) is None
    reason = crash_loop_reason(count, max_retries=1, window_hours=24)
    assert reason is not None
    assert "crashed 2 times in the last 24 hours" in reason and "no heartbeat" in reason


def test_a_run_that_never_crashed_goes_on() -> None:
    count = count_crashes([at(1, Running())], NOW - timedelta(hours=24))
    assert (count.total, count.recent, count.last_message) == (0, 0, "")
    assert crash_loop_reason(count, max_retries=0, window_hours=24) is None
