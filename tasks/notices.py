"""Notices (expiry reminders, escalations, revocation notices): rendered once, delivered on
every channel.

A transport that fails is logged and left pending for the next detection run
to retry; it never fails the step that sent the notice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from certrenew.adapters.notice import Delivery, Notice, NoticeChannel
from certrenew.errors import InventoryError
from certrenew.inventory import load_inventory
from certrenew.templates import render_ticket

log = logging.getLogger(__name__)


def send_notice(
    channels: Sequence[NoticeChannel],
    notice_id: str,
    template: str,
    recipients: Sequence[str],
    **context: object,
) -> list[str]:
    """Render `template` (first line = subject) and deliver it on every channel.

    Returns what did not go out, one line per transport (also logged).
    """
    subject, body = render_ticket(template, **context)
    notice = Notice(notice_id, subject, body, tuple(recipients))
    return report_failures([channel.deliver(notice) for channel in channels])


def retry_pending_notices(channels: Sequence[NoticeChannel]) -> list[str]:
    """Every notice a transport has not taken yet, tried again; what still did not go out."""
    return report_failures([d for channel in channels for d in channel.retry_pending()])


def report_failures(deliveries: Iterable[Delivery]) -> list[str]:
    """One warning per transport that did not take a notice; the lines, for summaries."""
    return [
        report(
            f"notice {delivery.notice} not delivered by {reason} (kept pending; retried next run)"
        )
        for delivery in deliveries
        for _, reason in delivery.failed
    ]


def report(line: str) -> str:
    """`line` as a warning in the run's log (the Prefect UI shows it); returned for summaries."""
    _logger().warning("%s", line)
    return line


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger inside a flow or task (shown in the UI), else this module's."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return log


def owner_mailbox(inventory: Path, name: str) -> str | None:
    """The certificate owner's mailbox from the inventory as it is now; None when unknown."""
    try:
        return load_inventory(inventory).get(name).owner_email
    except InventoryError:
        return None
