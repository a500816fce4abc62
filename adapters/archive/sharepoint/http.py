"""One HTTP session for SharePoint and its authority that rides out throttling and short outages.

SharePoint throttles with 429/503 and a `Retry-After` header, and both services
have short outages. Retrying each request here, below msal and the office365
library, keeps an upload session or a form-digest refresh going instead of
restarting the step. The policy, the `Retry-After` parser and the loop are
certrenew.retry's, shared with Jira: every wait is bounded (attempts and a cap
on each delay, a longer `Retry-After` included), and when the service stays
away the step gets ServiceUnavailable: the flow waits and retries later,
keeping its state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests import PreparedRequest, Response
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import SSLError, Timeout

from certrenew import retry
from certrenew.errors import Transient
from certrenew.retry import GaveUp, RetryPolicy, retrying

if TYPE_CHECKING:
    # Only in the requests stubs: the typed dict merge_environment_settings returns.
    from requests.sessions import _Settings

log = logging.getLogger(__name__)

# Answers that mean "not now" rather than "no".
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def retry_after_seconds(response: Response) -> float | None:
    """The answer's `Retry-After` in seconds, parsed the one way every adapter parses it."""
    return retry.retry_after_seconds(response.headers.get("Retry-After"))


def _network_failure(exc: Exception, read_timeout: float) -> Transient | None:
    """Dropped connections and timeouts are worth repeating; an untrusted certificate is not."""
    if isinstance(exc, Timeout) and not isinstance(exc, RequestsConnectionError):
        return Transient(f"network error: no answer within {read_timeout:g} s (ReadTimeout)")
    if isinstance(exc, RequestsConnectionError | Timeout) and not isinstance(exc, SSLError):
        return Transient(f"network error ({type(exc).__name__})")
    return None


class PatientSession(requests.Session):
    """A requests session that retries transient failures per request, then gives up clearly."""

    def __init__(
        self,
        policy: RetryPolicy,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = (10.0, 60.0),
        systems: Mapping[str, str] | None = None,
    ) -> None:
        """`systems` names the origins in messages ("SharePoint", "the sign-in authority")."""
        super().__init__()
        self.verify = verify
        self.policy = policy
        self._sleep = sleep
        self.timeout = timeout
        self.systems = dict(systems or {})

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        """An explicit CA bundle beats REQUESTS_CA_BUNDLE, which requests would let win."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        # msal sends with no timeout when given a session: a silent authority would hold
        # the step forever. Every request gets (connect, read) unless its caller set one.
        timeout = kwargs.get("timeout")
        if timeout is None:
            timeout = self.timeout
        elif isinstance(timeout, tuple):  # (connect, None) leaves the read unbounded
            connect, read = timeout
            timeout = (connect or self.timeout[0], read or self.timeout[1])
        kwargs["timeout"] = timeout
        read_timeout = float(timeout[1] if isinstance(timeout, tuple) else timeout)
        target = f"{request.method} {_where(request.url)}"
        send_once = super().send

        def attempt(_: int) -> Response:
            response = send_once(request, **kwargs)
            if response.status_code in TRANSIENT_STATUS:
                response.close()
                raise Transient(f"HTTP {response.status_code}", retry_after_seconds(response))
            return response

        def logged(failure: Transient, delay: float, next_attempt: int) -> None:
            log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)",
                target,
                failure.reason,
                delay,
                next_attempt,
                self.policy.attempts,
            )

        def gave_up(stop: GaveUp) -> str:
            wait = stop.last.retry_after
            asked = f", asked to wait {wait:.0f} s" if wait is not None else ""
            origin = _where(request.url, path=False)
            system = self.systems.get(origin, "")
            url = _where(request.url)
            url = url if len(url) <= 150 else url[:147] + "..."
            return (
                f"{system + ' at ' if system else ''}{origin} is unavailable "
                f"({stop.last.reason}{asked} on {request.method} {url}, {stop.attempts} "
                f"attempts over {stop.waited:.0f} s); the step waits and retries later, the "
                f"renewal keeps its state; check that {system or 'it'} is up"
            )

        return retrying(
            attempt,
            self.policy,
            classify=lambda exc: _network_failure(exc, read_timeout),
            describe=gave_up,
            sleep=self._sleep,
            on_retry=logged,
        )


def _where(url: str | None, path: bool = True) -> str:
    """Scheme, host and path of a URL, for messages."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" + (parts.path if path else "")
