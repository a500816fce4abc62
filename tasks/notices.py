"""Notices (expiry reminders, revocation notices): rendered once, delivered on every channel."""

from __future__ import annotations

from collections.abc import Sequence

from certrenew.adapters.notice import Notice, NoticeChannel
from certrenew.templates import render_ticket


def send_notice(
    channels: Sequence[NoticeChannel],
    notice_id: str,
    template: str,
    recipients: Sequence[str],
    **context: object,
) -> None:
    """Render `template` (first line = subject) and deliver it on every channel."""
    subject, body = render_ticket(template, **context)
    notice = Notice(notice_id, subject, body, tuple(recipients))
    for channel in channels:
        channel.deliver(notice)
