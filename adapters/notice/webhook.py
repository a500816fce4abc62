"""Notices as a JSON POST, for a Teams or Slack relay or a ticketing inbox.

The body is apprise's JSON notification (`version`, `title`, `message`, `type`,
`attachments`) plus `notice` (the notice's stable id, for receivers that keep
only the first of repeated posts) and `recipients` (comma-separated).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from certrenew.adapters.notice import Notice
from certrenew.adapters.notice.apprise_send import send_with_apprise
from certrenew.config import WebhookSettings


class WebhookTransport:
    """Transport that POSTs a notice as JSON, with the token as a bearer credential."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings

    def send(self, notice: Notice) -> None:
        token = self.settings.secret_token()
        send_with_apprise(self.url(notice, token), notice, self.name, [token or ""])

    def url(self, notice: Notice, token: str | None) -> str:
        """The apprise address of the webhook for `notice` (holds the token: never shown)."""
        target = urlsplit(self.settings.url)
        scheme = "jsons" if target.scheme == "https" else "json"
        query = [(f"-{name}", value) for name, value in parse_qsl(target.query)]
        query += [
            (":notice", notice.id),
            (":recipients", ", ".join(notice.recipients)),
            ("rto", str(self.settings.timeout_seconds)),
            ("cto", str(self.settings.timeout_seconds)),
        ]
        if token:
            query.append(("+Authorization", f"Bearer {token}"))
        path = quote(target.path or "/", safe="/")
        return f"{scheme}://{target.netloc}{path}?{urlencode(query, quote_via=quote)}"
