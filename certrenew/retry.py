"""One retry loop for every outside system: bounded attempts, bounded waits, one way to give up.

Jira and SharePoint both throttle (429/503 with `Retry-After`) and both have
short outages. A step rides those out here, a few attempts with short waits,
and when the system stays away it raises ServiceUnavailable, so the flow waits
its longer wait and retries the step with its state intact. Keeping the policy,
the `Retry-After` parser and the loop in one place keeps both adapters' waits
bounded the same way.

This is the core layer: it imports the standard library and certrenew.errors
only. What counts as transient is the adapter's call (it knows its library's
exceptions and status codes); the loop only counts, waits and gives up.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from certrenew.errors import ServiceUnavailable, Transient

T = TypeVar("T")

# RFC 9110 delay-seconds is 1*DIGIT; a decimal fraction is tolerated because some
# servers send one. ASCII only: str.isdigit() would also accept "²", which float() refuses.
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# 2**64 base delays outlast any cap; a larger exponent would overflow a float.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True)
class RetryPolicy:
    """How long a step keeps trying before it hands over to the flow's longer wait.

    `attempts` counts every try, the first included, so `attempts=1` never
    retries. `clamp_retry_after=False` is for a system where retrying earlier
    than the server asked is pointless: a `Retry-After` above the cap then
    ends the loop at once instead of being shortened.
    """

    attempts: int
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    clamp_retry_after: bool = True

    def __post_init__(self) -> None:
        # Fail at construction: a policy that never tries or waits negatively is a wiring bug.
        if self.attempts < 1:
            raise ValueError(f"a retry policy needs at least 1 attempt, not {self.attempts}")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("retry delays cannot be negative")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry `retry` (1 for the first): the server's, but never above the cap.

        Without a `Retry-After` it backs off exponentially from the base
        (base, 2*base, 4*base ...), so a struggling server gets room quickly.
        """
        if retry < 1:
            raise ValueError(f"retries are numbered from 1, not {retry}")
        if retry_after is not None:
            wanted = max(0.0, retry_after)
        else:
            wanted = self.base_delay_seconds * 2.0 ** min(retry - 1, _MAX_DOUBLINGS)
        return min(wanted, self.max_delay_seconds)

    def hands_over(self, retry_after: float | None) -> bool:
        """True when the server asks for longer than the cap and the policy will not shorten it."""
        return (
            not self.clamp_retry_after
            and retry_after is not None
            and retry_after > self.max_delay_seconds
        )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header value as seconds from `now`; None when absent or unreadable.

    RFC 9110 allows delay-seconds or an HTTP-date (IMF-fixdate, and the obsolete
    RFC 850 and asctime forms a recipient must still accept). A date already
    past means "now" (0). Unreadable values give None rather than an error, so
    the caller falls back to its own backoff instead of failing the step over a
    header. HTTP-dates are always GMT, so a date without a zone is read as UTC.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (_as_utc(when) - _as_utc(reference)).total_seconds())


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class GaveUp:
    """Why the loop stopped, for the adapter's message (only it can name the system and step).

    `over_cap` is set when the server asked for a longer wait than the policy
    allows (`last.retry_after`) and the loop stopped early rather than retry sooner.
    """

    attempts: int
    last: Transient
    waited: float
    over_cap: bool = False


def _nothing_transient(exc: Exception) -> None:
    return None


def retrying(
    call: Callable[[int], T],
    policy: RetryPolicy,
    *,
    describe: Callable[[GaveUp], str],
    classify: Callable[[Exception], Transient | Exception | None] = _nothing_transient,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Transient, float, int], None] | None = None,
) -> T:
    """`call(attempt)` (attempt numbered from 1) until it returns, within `policy`.

    A Transient raised by `call` is retried. Any other exception goes to
    `classify`: a Transient back means retry it, another exception means raise
    that one instead (the adapter's translation), None means it is not ours to
    handle and it propagates unchanged. Replacements and the final
    ServiceUnavailable are raised outside the `except` block, so no library
    exception (which may print request headers, credentials among them) rides
    along as `__context__`. `attempt` lets a call check, before repeating a
    non-idempotent request, whether a lost earlier attempt already happened.
    `on_retry(failure, delay, next_attempt)` runs before each wait, for logging.
    `sleep` is injectable so tests record waits instead of waiting.
    """
    attempt = 0
    waited = 0.0
    while True:
        attempt += 1
        outcome: Exception
        try:
            return call(attempt)
        except Transient as exc:
            outcome = exc
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            outcome = verdict
        if not isinstance(outcome, Transient):
            raise outcome
        if attempt >= policy.attempts:
            raise ServiceUnavailable(describe(GaveUp(attempt, outcome, waited)))
        if policy.hands_over(outcome.retry_after):
            raise ServiceUnavailable(describe(GaveUp(attempt, outcome, waited, over_cap=True)))
        delay = policy.delay(attempt, outcome.retry_after)
        if on_retry is not None:
            on_retry(outcome, delay, attempt + 1)
        sleep(delay)
        waited += delay
