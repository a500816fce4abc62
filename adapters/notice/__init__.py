"""The notice seam: where expiry reminders, escalations and revocation notices go.

The outbox (a folder of `.eml` files) is the record of what was sent and
makes sending idempotent: a notice is recorded once, under its stable id, and
handed to each transport (SMTP, a webhook) until that transport took it. A
transport that fails leaves the notice pending; the next run tries it again.
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


class DeliveryFailed(Exception):
    """A transport could not hand a notice over; the message names the transport, never a secret."""


@dataclass(frozen=True)
class Delivery:
    """What became of one notice: the transports that took it now, and those that failed."""

    notice: str
    sent: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (transport, reason)

    @property
    def complete(self) -> bool:
        return not self.failed


@runtime_checkable
class NoticeChannel(Protocol):
    """Records and delivers notices: the outbox with its transports."""

    def deliver(self, notice: Notice) -> Delivery:
        """Deliver `notice` on every transport that has not taken it yet; never raises for them."""
        ...

    def retry_pending(self) -> list[Delivery]:
        """Try again every recorded notice some transport has not taken yet."""
        ...


@runtime_checkable
class Transport(Protocol):
    """One way a notice reaches people; sends on every call (the outbox keeps it to once)."""

    name: str

    def send(self, notice: Notice) -> None:
        """Hand `notice` over, or raise DeliveryFailed saying why."""
        ...
