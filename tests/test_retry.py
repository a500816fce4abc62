"""The shared retry helper on its own: delays, Retry-After parsing and the bounded loop.

No network and no real waiting: the loop's sleep is a list that records the waits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from certrenew.errors import ConfigError, ServiceUnavailable, Transient
from certrenew.retry import GaveUp, RetryPolicy, retry_after_seconds, retrying

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class LibraryError(Exception):
    """Stands in for an HTTP library's exception, whose text must not travel."""


def flaky(
    failures: list[Exception], result: str = "done"
) -> tuple[Callable[[int], str], list[int]]:
    """A call that raises `failures` in turn, then returns `result`; records attempt numbers."""
    seen: list[int] = []

    def call(attempt: int) -> str:
        seen.append(attempt)
        if failures:
            raise failures.pop(0)
        return result

    return call, seen


def describe(stop: GaveUp) -> str:
    return f"gave up after {stop.attempts} (last: {stop.last.reason}, waited {stop.waited:g} s)"


# -- Retry-After -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("0", 0.0)])
def test_retry_after_as_delay_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Sat, 01 Mar 2025 12:01:40 GMT",  # IMF-fixdate
        "Saturday, 01-Mar-25 12:01:40 GMT",  # obsolete RFC 850
        "Sat Mar  1 12:01:40 2025",  # obsolete asctime, no zone: GMT
    ],
)
def test_retry_after_as_an_http_date_in_the_future(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) == 100.0


def test_retry_after_as_a_date_defaults_to_the_current_time() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    assert 3590 < (retry_after_seconds(later) or 0) <= 3600


def test_retry_after_in_the_past_means_now() -> None:
    assert retry_after_seconds("Sat, 01 Mar 2025 11:00:00 GMT", now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "1e3", "inf", "nan", "²"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert retry_after_seconds(value, now=NOW) is None


# -- the policy's delays -------------------------------------------------------------------


def test_backoff_doubles_from_the_base() -> None:
    policy = RetryPolicy(attempts=5, base_delay_seconds=0.5, max_delay_seconds=100)
    assert [policy.delay(n) for n in range(1, 5)] == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay_seconds=1, max_delay_seconds=5)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(10_000) == 5.0  # no overflow on absurd retry numbers


def test_server_wait_replaces_the_backoff() -> None:
    policy = RetryPolicy(attempts=5, base_delay_seconds=1, max_delay_seconds=60)
    assert policy.delay(4, retry_after=0.25) == 0.25
    assert policy.delay(1, retry_after=7) == 7.0


def test_server_wait_is_capped() -> None:
    policy = RetryPolicy(attempts=5, max_delay_seconds=30)
    assert policy.delay(1, retry_after=3600) == 30.0


def test_policy_hands_over_only_when_it_will_not_shorten_the_wait() -> None:
    clamping = RetryPolicy(attempts=3, max_delay_seconds=60)
    strict = RetryPolicy(attempts=3, max_delay_seconds=60, clamp_retry_after=False)
    assert not clamping.hands_over(3600)
    assert strict.hands_over(3600)
    assert not strict.hands_over(60)
    assert not strict.hands_over(None)


@pytest.mark.parametrize(
    "changes",
    [{"attempts": 0}, {"base_delay_seconds": -1.0}, {"max_delay_seconds": -1.0}],
)
def test_impossible_policies_are_refused(changes: dict[str, float]) -> None:
    fields: dict[str, float] = {"attempts": 3, "base_delay_seconds": 1.0, "max_delay_seconds": 5}
    with pytest.raises(ValueError):
        # `attempts` is an int among floats: one dict of keyword values types them all as float.
        RetryPolicy(**{**fields, **changes})  # type: ignore[arg-type]


def test_retries_are_numbered_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=3).delay(0)


# -- the loop ----------------------------------------------------------------------------


def test_success_at_once_neither_retries_nor_waits() -> None:
    sleeps: list[float] = []
    call, seen = flaky([])
    assert retrying(call, RetryPolicy(attempts=3), describe=describe, sleep=sleeps.append) == "done"
    assert seen == [1]
    assert sleeps == []


def test_transient_failures_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    call, seen = flaky([Transient("HTTP 503"), Transient("HTTP 502")])
    policy = RetryPolicy(attempts=4, base_delay_seconds=1, max_delay_seconds=60)
    assert retrying(call, policy, describe=describe, sleep=sleeps.append) == "done"
    assert seen == [1, 2, 3]
    assert sleeps == [1.0, 2.0]


def test_the_servers_wait_is_honoured_and_capped() -> None:
    sleeps: list[float] = []
    call, _ = flaky([Transient("HTTP 429", retry_after=7), Transient("HTTP 503", 3600)])
    policy = RetryPolicy(attempts=3, max_delay_seconds=30)
    retrying(call, policy, describe=describe, sleep=sleeps.append)
    assert sleeps == [7.0, 30.0]


def test_the_loop_stops_after_the_bounded_attempts() -> None:
    sleeps: list[float] = []
    stops: list[GaveUp] = []

    def always_down(attempt: int) -> str:
        raise Transient(f"HTTP 503 on try {attempt}")

    def remember(stop: GaveUp) -> str:
        stops.append(stop)
        return describe(stop)

    policy = RetryPolicy(attempts=3, base_delay_seconds=1, max_delay_seconds=60)
    with pytest.raises(ServiceUnavailable) as caught:
        retrying(always_down, policy, describe=remember, sleep=sleeps.append)
    assert str(caught.value) == "gave up after 3 (last: HTTP 503 on try 3, waited 3 s)"
    assert sleeps == [1.0, 2.0]
    [stop] = stops
    assert (stop.attempts, stop.waited, stop.over_cap) == (3, 3.0, False)
    assert caught.value.__context__ is None


def test_one_attempt_means_no_retry() -> None:
    sleeps: list[float] = []
    call, seen = flaky([Transient("HTTP 500")])
    with pytest.raises(ServiceUnavailable, match="gave up after 1"):
        retrying(call, RetryPolicy(attempts=1), describe=describe, sleep=sleeps.append)
    assert seen == [1]
    assert sleeps == []


def test_a_wait_beyond_the_cap_hands_over_when_the_policy_will_not_shorten_it() -> None:
    sleeps: list[float] = []
    stops: list[GaveUp] = []
    call, seen = flaky([Transient("HTTP 429", retry_after=3600)])
    policy = RetryPolicy(attempts=5, max_delay_seconds=60, clamp_retry_after=False)

    def remember(stop: GaveUp) -> str:
        stops.append(stop)
        return f"asks to wait {stop.last.retry_after:.0f} s"

    with pytest.raises(ServiceUnavailable, match="asks to wait 3600 s"):
        retrying(call, policy, describe=remember, sleep=sleeps.append)
    assert seen == [1]
    assert sleeps == []
    assert stops[0].over_cap


def test_classified_library_errors_are_retried_and_never_chained() -> None:
    sleeps: list[float] = []
    call, seen = flaky([LibraryError("Authorization: Bearer s3cret")] * 2)

    def classify(exc: Exception) -> Transient | None:
        return (
            Transient(f"no answer ({type(exc).__name__})")
            if isinstance(exc, LibraryError)
            else None
        )

    with pytest.raises(ServiceUnavailable) as caught:
        retrying(
            call, RetryPolicy(attempts=2), describe=describe, classify=classify, sleep=sleeps.append
        )
    assert seen == [1, 2]
    assert "no answer (LibraryError)" in str(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_a_translated_error_is_raised_at_once_without_the_original() -> None:
    sleeps: list[float] = []
    call, seen = flaky([LibraryError("Authorization: Bearer s3cret")])

    def classify(exc: Exception) -> Exception:
        return ConfigError("fix the URL setting")

    with pytest.raises(ConfigError, match="fix the URL setting") as caught:
        retrying(
            call, RetryPolicy(attempts=5), describe=describe, classify=classify, sleep=sleeps.append
        )
    assert seen == [1]
    assert sleeps == []
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_unclassified_errors_propagate_unchanged() -> None:
    original = KeyError("not a transport problem")
    call, seen = flaky([original])
    with pytest.raises(KeyError) as caught:
        retrying(call, RetryPolicy(attempts=5), describe=describe, sleep=lambda _: None)
    assert caught.value is original
    assert seen == [1]


def test_on_retry_hears_each_wait_before_it_happens() -> None:
    heard: list[tuple[str, float, int]] = []
    sleeps: list[float] = []
    call, _ = flaky([Transient("HTTP 503"), Transient("HTTP 429", retry_after=5)])

    def on_retry(failure: Transient, delay: float, next_attempt: int) -> None:
        assert len(sleeps) == next_attempt - 2  # called before that wait, not after
        heard.append((failure.reason, delay, next_attempt))

    retrying(
        call, RetryPolicy(attempts=3), describe=describe, sleep=sleeps.append, on_retry=on_retry
    )
    assert heard == [("HTTP 503", 1.0, 2), ("HTTP 429", 5.0, 3)]
