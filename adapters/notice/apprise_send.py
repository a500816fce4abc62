"""Sending one notice through apprise, the notification library that ships with Prefect.

apprise speaks SMTP (STARTTLS or TLS from the first byte, login) to any relay
and POSTs JSON to any URL, so certrenew writes no protocol code of its own.
Its send reports only success; the reason of a failure is what it logs, so the
warnings it logs during the send become the failure's message. Those say what
failed and where, never the URL's password or token; any secret is masked all
the same before a message leaves this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from certrenew.adapters.notice import DeliveryFailed, Notice

APP_ID = "certrenew"


def send_with_apprise(url: str, notice: Notice, transport: str, secrets: Iterable[str]) -> None:
    """Send `notice` to the apprise `url`, or raise DeliveryFailed with apprise's reason."""
    import apprise

    sender = apprise.Apprise(asset=apprise.AppriseAsset(app_id=APP_ID, app_desc=APP_ID))
    if not sender.add(url):
        raise DeliveryFailed(f"{transport}: the settings do not make a valid address")
    with apprise.LogCapture(level=logging.DEBUG, fmt="%(levelname)s %(message)s") as log:
        sent = sender.notify(
            body=notice.body, title=notice.subject, body_format=apprise.NotifyFormat.TEXT
        )
    if not sent:
        raise DeliveryFailed(masked(f"{transport}: {reason(str(log.getvalue()))}", secrets))


def reason(logged: str) -> str:
    """What apprise said went wrong: its warnings, and the server's own answer it logs as
    a "Socket Exception" (a relay's `535 ... credentials invalid`); nothing else it logs."""
    said = []
    for line in logged.splitlines():
        level, _, message = line.partition(" ")
        if level in ("WARNING", "ERROR", "CRITICAL") or message.startswith("Socket Exception"):
            said.append(" ".join(message.split()))
    return "; ".join(said)[:500] or "no reason given"


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (and its URL-quoted form) replaced by `***`."""
    from urllib.parse import quote

    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text
