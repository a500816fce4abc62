"""One HTTP session for SharePoint and its authority that rides out throttling and short outages.

SharePoint throttles with 429/503 and a `Retry-After` header, and both services
have short outages. Retrying each request here, below msal and the office365
library, keeps an upload session or a form-digest refresh going instead of
restarting the step. Every wait is bounded (attempts and a cap on each delay),
and when the service stays away the step gets ServiceUnavailable: the flow
waits and retries later, keeping its state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests import PreparedRequest, Response
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import SSLError, Timeout

from certrenew.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# Answers that mean "not now" rather than "no".
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    max_delay_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when the server names one, else 1, 2, 4 ... seconds; never above the cap."""
        wanted = retry_after if retry_after is not None else float(2 ** (attempt - 1))
        return min(wanted, self.max_delay_seconds)


def retry_after_seconds(response: Response) -> float | None:
    """`Retry-After` as seconds (RFC 9110: delay-seconds or an HTTP-date); None when absent."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PatientSession(requests.Session):
    """A requests session that retries transient failures per request, then gives up clearly."""

    def __init__(
        self,
        policy: RetryPolicy,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.verify = verify
        self.policy = policy
        self._sleep = sleep

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """An explicit CA bundle beats REQUESTS_CA_BUNDLE, which requests would let win."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        target = f"{request.method} {_where(request.url)}"
        last = ""
        waited = 0.0
        for attempt in range(1, self.policy.attempts + 1):
            retry_after: float | None = None
            try:
                response = super().send(request, **kwargs)
            except SSLError:
                raise
            except (RequestsConnectionError, Timeout) as exc:
                last = f"network error ({type(exc).__name__})"
            else:
                if response.status_code not in TRANSIENT_STATUS:
                    return response
                retry_after = retry_after_seconds(response)
                last = f"HTTP {response.status_code}"
                response.close()
            if attempt == self.policy.attempts:
                break
            delay = self.policy.delay(attempt, retry_after)
            log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)",
                target,
                last,
                delay,
                attempt + 1,
                self.policy.attempts,
            )
            self._sleep(delay)
            waited += delay
        raise ServiceUnavailable(
            f"{_where(request.url, path=False)} is unavailable ({last} on {target}, "
            f"{self.policy.attempts} attempts over {waited:.0f} s); the step waits and "
            "retries later, the renewal keeps its state"
        )


def _where(url: str | None, path: bool = True) -> str:
    """Scheme, host and path of a URL, for messages."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" + (parts.path if path else "")
