"""Reaching the Prefect API from the command line: ask briefly first, say plainly when it fails.

Prefect's client waits up to its request timeout and retries connection
failures and timeouts several times with growing pauses, which is right inside
a flow and wrong at a prompt: `certrenew renew` and `serve` printed a
300-line ConnectError when nothing listened, and hung without a word when a
server accepted connections and never answered. So the commands ask the API's
/health once, with a short timeout and no retries, before anything else, and
every failure to reach the API is the same one-line message.
"""

from __future__ import annotations

from certrenew.errors import ServiceUnavailable

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
