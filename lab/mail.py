"""Where notices land in the tests: a real SMTP server and a JSON webhook receiver on loopback.

`MailServer` is aiosmtpd with the relay's security (STARTTLS, TLS from the
first byte, or none) and a login it checks; it keeps each message as it
arrived, envelope and all. `WebhookReceiver` takes JSON POSTs, checks a bearer
token and keeps each body. Both can be told to refuse (`failing = True`), as
a relay or a receiver that is down, so the tests see a notice kept pending
and delivered on the next try; to hold their answer longer than a client
waits (`stall_seconds`, before or after taking the message:
`stall_after_taking`); and to go down (connections refused) and come back on
the same port, with another TLS context when given. The receiver can also
throttle (`throttle_retry_after`: 429 with that Retry-After).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from certrenew.lab.listener import Listener
from certrenew.lab.stack import free_port


@dataclass(frozen=True)
class ArrivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


@dataclass
class MailServer:
    """An SMTP relay on 127.0.0.1 that answers to `localhost` with the given TLS context."""

    tls: ssl.SSLContext | None
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    arrived: list[ArrivedMail] = field(default_factory=list)
    failing: bool = False
    stall_seconds: float = 0.0
    stall_after_taking: bool = False  # the message is kept, then the answer held
    port: int = 0
    _controller: Controller | None = None

    def start(self) -> Self:
        self.port = self.port or free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            ssl_context=self.tls if self.security == "tls" else None,
            tls_context=self.tls if self.security == "starttls" else None,
            require_starttls=self.security == "starttls",
            authenticator=self._authenticate if self.user else None,
            auth_required=bool(self.user),
            # aiosmtpd counts only STARTTLS as TLS: on implicit TLS it would hide AUTH
            # (and warns that AUTH is allowed without TLS: the session is TLS all the same).
            auth_require_tls=self.security == "starttls",
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def come_back(self, tls: ssl.SSLContext | None = None) -> None:
        """Listen again on the same port; with `tls`, serve another certificate."""
        self.stop()
        if tls is not None:
            self.tls = tls
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)  # refused: aiosmtpd answers 535

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.failing:
            return "451 4.3.0 relay unavailable, try again later"
        if self.stall_seconds and not self.stall_after_taking:
            await asyncio.sleep(self.stall_seconds)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.arrived.append(ArrivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), message))
        if self.stall_seconds and self.stall_after_taking:
            await asyncio.sleep(self.stall_seconds)
        return "250 OK"


@dataclass
class WebhookReceiver:
    """An HTTP endpoint on 127.0.0.1 that keeps every JSON body POSTed with the right token."""

    token: str | None = None
    tls: ssl.SSLContext | None = None  # HTTPS as `localhost` when set
    arrived: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False
    stall_seconds: float = 0.0
    stall_after_taking: bool = False  # the body is kept, then the answer held
    throttle_retry_after: str | None = None
    port: int = 0
    _listener: Listener | None = None

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}/hooks/certrenew"
        return f"http://127.0.0.1:{self.port}/hooks/certrenew"

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = f"Bearer {receiver.token}" if receiver.token else None
                if receiver.failing:
                    self._answer(503, "receiver down")
                elif receiver.throttle_retry_after is not None:
                    self._answer(429, "slow down", receiver.throttle_retry_after)
                elif expected and self.headers.get("Authorization") != expected:
                    self._answer(401, "wrong or missing token")
                elif self.path != "/hooks/certrenew":
                    self._answer(404, "no such hook")
                else:
                    if receiver.stall_seconds and not receiver.stall_after_taking:
                        time.sleep(receiver.stall_seconds)
                    receiver.arrived.append(json.loads(body))
                    if receiver.stall_seconds and receiver.stall_after_taking:
                        time.sleep(receiver.stall_seconds)
                    self._answer(200, "ok")

            def _answer(self, status: int, text: str, retry_after: str | None = None) -> None:
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._listener = Listener(Handler, self.tls)
        self.port = self._listener.port
        self._listener.start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()

    def come_back(self, tls: ssl.SSLContext | None = None) -> None:
        """Listen again on the same port; with `tls`, serve another certificate."""
        assert self._listener is not None
        self._listener.come_back(tls)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
