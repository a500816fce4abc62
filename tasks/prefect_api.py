"""Reaching the Prefect API from the command line: ask briefly first, say plainly when it fails.

Prefect's client waits up to its request timeout and retries connection
failures and timeouts several times with growing pauses, which is right inside
a flow and wrong at a prompt: `certrenew renew` and `serve` printed a
300-line ConnectError when nothing listened, and hung without a word when a
server accepted connections and never answered. So the commands ask the API's
/health once, with a short timeout and no retries, before anything else, and
every failure to reach the API is the same one-line message.

Inside a run it is the other way round: a write the run cannot do without is
tried again for longer than Prefect's client does (`patiently`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from certrenew.errors import ServiceUnavailable, Transient
from certrenew.retry import RetryPolicy, retrying

T = TypeVar("T")

log = logging.getLogger("certrenew")

# How long the first health check waits for an answer.
HEALTH_CHECK_SECONDS = 10.0


def unreachable(exc: BaseException, timeout: float | None = None) -> ServiceUnavailable:
    """The one message for a Prefect API that could not be reached, and what to do."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    where = f"the Prefect API at {PREFECT_API_URL.value() or '(not set)'}"
    if isinstance(exc, httpx.HTTPStatusError):
        return ServiceUnavailable(
            f"{where} answered its health check with HTTP {exc.response.status_code}: check "
            "PREFECT_API_URL, and PREFECT_API_AUTH_STRING or PREFECT_API_KEY if the server "
            "needs them"
        )
    if isinstance(exc, httpx.TimeoutException) and timeout is not None:
        what = f"did not answer within {timeout:g} s (the connection was accepted)"
    elif isinstance(exc, httpx.ConnectError):
        what = "refused the connection (nothing listens there?)"
    else:
        what = f"did not answer ({type(exc).__name__})"
    return ServiceUnavailable(
        f"{where} {what}: start the server (`prefect server start`) or set PREFECT_API_URL "
        "to the server the renewals run on"
    )


# A run's own write that must not be lost to a busy server: SQLite turns writes away
# (HTTP 503) while hundreds of runs start, longer than Prefect's client retries them.
# Tried for about two minutes more, on top of those.
PATIENT = RetryPolicy(attempts=10, base_delay_seconds=0.5, max_delay_seconds=30.0)


def unanswered(exc: BaseException) -> bool:
    """Whether a request failed for want of a server: no connection, no answer, or a 5xx."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def patiently(call: Callable[[], T], what: str, policy: RetryPolicy = PATIENT) -> T:
    """`call()`, tried again while the Prefect API does not answer or turns it away."""

    def classify(exc: Exception) -> Transient | None:
        if not unanswered(exc):
            return None
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return Transient(f"HTTP {status}" if status else type(exc).__name__)

    def retry_said(failure: Transient, delay: float, attempt: int) -> None:
        log.warning(
            "the Prefect API did not take %s (%s): try %d in %.1f s",
            what,
            failure.reason,
            attempt,
            delay,
        )

    return retrying(
        lambda _: call(),
        policy,
        describe=lambda gave: (
            f"the Prefect API did not take {what} in {gave.attempts} tries over "
            f"{gave.waited:.0f} s ({gave.last.reason}): check the server and its database"
        ),
        classify=classify,
        on_retry=retry_said,
    )


def require_prefect_api(timeout: float = HEALTH_CHECK_SECONDS) -> None:
    """Raise ServiceUnavailable unless the configured Prefect API answers within `timeout`.

    Without PREFECT_API_URL, Prefect starts a server of its own: nothing to ask.
    """
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    if not PREFECT_API_URL.value():
        return
    with (
        temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}),
        get_client(sync_client=True, httpx_settings={"timeout": timeout}) as client,
    ):
        problem = client.api_healthcheck()
    if problem is not None:
        raise unreachable(problem, timeout)
