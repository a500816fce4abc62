"""Notices by email: one message per notice to all its recipients, through the team's relay."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from certrenew.adapters.notice import DeliveryFailed, Notice
from certrenew.adapters.notice.apprise_send import send_with_apprise
from certrenew.config import SmtpSettings

# apprise's names for the three ways of talking to a relay.
MODES = {"starttls": "starttls", "tls": "ssl", "none": "insecure"}


class SmtpTransport:
    """Transport that mails a notice: To the first recipient, Cc the others, one message."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, notice: Notice) -> None:
        if not notice.recipients:
            raise DeliveryFailed("smtp: the notice has no recipient: set [notices] recipients")
        password = self.settings.secret_password()
        send_with_apprise(self.url(notice, password), notice, self.name, [password or ""])

    def url(self, notice: Notice, password: str | None) -> str:
        """The apprise address of this relay for `notice` (holds the password: never shown)."""
        s = self.settings
        login = ""
        if s.user:
            login = quote(s.user, safe="")
            if password:
                login += ":" + quote(password, safe="")
            login += "@"
        port = f":{s.port}" if s.port else ""
        first, *others = notice.recipients
        query = {
            "mode": MODES[s.security],
            "from": s.sender,
            "to": first,
            "format": "text",
            "cto": str(s.timeout_seconds),
            "+X-Certrenew-Notice": notice.id,
        }
        if others:
            query["cc"] = ",".join(others)
        scheme = "mailto" if s.security == "none" else "mailtos"
        return f"{scheme}://{login}{s.host}{port}/?{urlencode(query, safe='@,<>', quote_via=quote)}"
