"""Notices (expiry reminders, revocation notices) written to an outbox.

The outbox is a folder of RFC 5322 messages named by notice id: writing the same
notice twice leaves one file, and any mail relay or a person can pick them up.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from certrenew.templates import render_ticket


def write_notice(
    outbox: Path, notice_id: str, template: str, recipients: list[str], **context: object
) -> Path:
    """Render `template` (first line = subject) into `<outbox>/<notice_id>.eml`, once."""
    path = outbox / f"{notice_id}.eml"
    if path.exists():
        return path
    subject, body = render_ticket(template, **context)
    message = EmailMessage()
    message["Subject"] = subject
    message["To"] = ", ".join(recipients)
    message["X-Certrenew-Notice"] = notice_id
    message.set_content(body, cte="8bit")  # readable as it lies in the outbox
    outbox.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(message.as_bytes())
    partial.replace(path)
    return path
