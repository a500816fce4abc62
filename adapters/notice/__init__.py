"""The notice seam: where expiry reminders and revocation notices go.

A channel delivers one rendered notice. The outbox (a folder of `.eml` files)
is the record of what was sent and makes sending idempotent; channels that
reach people (SMTP, a webhook) sit beside it behind the same method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Notice:
    """One notice, rendered: `id` is stable, so delivering it twice sends it once."""

    id: str
    subject: str
    body: str
    recipients: tuple[str, ...]


@runtime_checkable
class NoticeChannel(Protocol):
    """The outbox today; email and webhooks are further implementations."""

    def deliver(self, notice: Notice) -> None:
        """Deliver `notice` unless it was delivered already."""
        ...
