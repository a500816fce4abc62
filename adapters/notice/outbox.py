"""Notices written to an outbox: a folder of RFC 5322 messages named by notice id.

Writing the same notice twice leaves one file, and any mail relay or a person
can pick them up.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from certrenew.adapters.notice import Notice


class Outbox:
    """NoticeChannel that keeps each notice as `<folder>/<id>.eml`, written once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, notice: Notice) -> None:
        path = self.folder / f"{notice.id}.eml"
        if path.exists():
            return
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["To"] = ", ".join(notice.recipients)
        message["X-Certrenew-Notice"] = notice.id
        message.set_content(notice.body, cte="8bit")  # readable as it lies in the outbox
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_bytes(message.as_bytes())
        partial.replace(path)  # a crash mid-write leaves no half notice under the real name
