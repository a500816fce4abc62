"""Notices delivered for real: SMTP (STARTTLS and TLS, with a login) and a JSON webhook.

Each transport runs through the notice contract behind the outbox, as
`build_notice_channels` wires it; the mail server and webhook receiver are real
servers on loopback (certrenew.lab.mail), and what they received is read back.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import trustme

from certrenew.adapters.notice import Notice, NoticeChannel, Transport
from certrenew.adapters.notice.outbox import Outbox
from certrenew.adapters.notice.smtp import SmtpTransport
from certrenew.adapters.notice.webhook import WebhookTransport
from certrenew.adapters.wiring import build_notice_channels
from certrenew.config import SmtpSettings, WebhookSettings, load_settings
from certrenew.errors import ConfigError
from certrenew.lab.mail import MailServer, WebhookReceiver
from tests.contract.notice_contract import NOTICE, NoticeChannelContract
from tests.fixtures_renewal import example_config

USER = "svc-certrenew"
PASSWORD = "s3cret:/@pass"  # characters that need quoting in an address
TOKEN = "hook-token-0123456789"
SENDER = "certrenew <certrenew@example.cat>"

Delivered = list[tuple[str, str, tuple[str, ...]]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test CA is the one the SMTP client trusts (as SSL_CERT_FILE does for a private CA)."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


def relay(
    ca: trustme.CA, security: Literal["starttls", "tls", "none"] = "starttls"
) -> Iterator[MailServer]:
    with MailServer(server_context(ca), security, USER, PASSWORD) as server:
        yield server


@pytest.fixture
def mail_server(ca: trustme.CA, trusted: None) -> Iterator[MailServer]:
    yield from relay(ca, "starttls")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(TOKEN) as server:
        yield server


def smtp_settings(server: MailServer, password: str = PASSWORD) -> SmtpSettings:
    return SmtpSettings(
        host="localhost",
        port=server.port,
        security=server.security,
        sender=SENDER,
        user=USER,
        password=password,
        timeout_seconds=10,
    )


def webhook_settings(receiver: WebhookReceiver, token: str = TOKEN) -> WebhookSettings:
    return WebhookSettings(url=receiver.url, token=token, timeout_seconds=10)


def mails(server: MailServer) -> Delivered:
    arrived = []
    for mail in server.arrived:
        message = mail.message
        to = [str(message["To"])] + [
            a.strip() for a in str(message["Cc"] or "").split(",") if a.strip()
        ]
        assert list(mail.rcpt_tos) == to  # the envelope says what the headers say
        body = message.get_content().replace("\r\n", "\n")  # SMTP's line ends
        arrived.append((str(message["Subject"]), body, tuple(to)))
    return arrived


class TestSmtpStartTls(NoticeChannelContract):
    @pytest.fixture
    def channel(self, mail_server: MailServer, tmp_path: Path) -> Outbox:
        self.server = mail_server
        return Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(mail_server))])

    def delivered(self, channel: NoticeChannel) -> Delivered:
        return mails(self.server)

    def test_the_message_names_its_sender_and_notice(self, channel: Outbox) -> None:
        channel.deliver(NOTICE)
        [mail] = self.server.arrived
        assert mail.mail_from == "certrenew@example.cat"
        assert mail.message["From"] == SENDER
        assert mail.message["X-Certrenew-Notice"] == NOTICE.id


class TestSmtpImplicitTls(NoticeChannelContract):
    @pytest.fixture
    def channel(self, ca: trustme.CA, trusted: None, tmp_path: Path) -> Iterator[Outbox]:
        for server in relay(ca, "tls"):
            self.server = server
            yield Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(server))])

    def delivered(self, channel: NoticeChannel) -> Delivered:
        return mails(self.server)


class TestWebhook(NoticeChannelContract):
    @pytest.fixture
    def channel(self, receiver: WebhookReceiver, tmp_path: Path) -> Outbox:
        self.receiver = receiver
        return Outbox(tmp_path / "outbox", [WebhookTransport(webhook_settings(receiver))])

    def delivered(self, channel: NoticeChannel) -> Delivered:
        return [
            (body["title"], body["message"], tuple(body["recipients"].split(", ")))
            for body in self.receiver.arrived
        ]

    def test_the_body_carries_the_notice_id(self, channel: Outbox) -> None:
        channel.deliver(NOTICE)
        [body] = self.receiver.arrived
        assert body["notice"] == NOTICE.id


def test_a_relay_that_refuses_keeps_the_notice_pending_until_the_next_run(
    mail_server: MailServer, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(mail_server))])
    mail_server.failing = True
    delivery = outbox.deliver(NOTICE)
    assert not delivery.complete and not mail_server.arrived
    [(transport, reason)] = delivery.failed
    assert transport == "smtp" and reason.startswith("smtp: ")
    assert (tmp_path / "outbox" / f"{NOTICE.id}.eml").exists()  # recorded all the same
    assert outbox.pending()[NOTICE.id]["smtp"]["attempts"] == 1

    assert outbox.retry_pending()[0].failed  # still down: still pending, tried twice
    assert outbox.pending()[NOTICE.id]["smtp"]["attempts"] == 2

    mail_server.failing = False
    [retried] = outbox.retry_pending()
    assert retried.sent == ("smtp",) and retried.complete
    assert mails(mail_server) == [(NOTICE.subject, NOTICE.body, NOTICE.recipients)]
    assert outbox.pending() == {} and outbox.retry_pending() == []
    outbox.deliver(NOTICE)  # the daily run hands it again: nothing more is sent
    assert len(mail_server.arrived) == 1


def test_a_notice_with_a_long_id_is_retried_under_that_id_and_sent_once(
    mail_server: MailServer, tmp_path: Path
) -> None:
    """A real reminder id (a 40-digit serial) folds its header line in the `.eml`."""
    notice = Notice(f"expiry-remind-{'0C94' * 10}-warning", NOTICE.subject, "Caduca.", ("a@b.cat",))
    outbox = Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(mail_server))])
    mail_server.failing = True
    outbox.deliver(notice)
    mail_server.failing = False
    [retried] = outbox.retry_pending()
    assert retried.notice == notice.id and retried.sent == ("smtp",)
    assert outbox.deliver(notice).sent == ()  # the daily run's reminder: already sent
    assert len(mail_server.arrived) == 1


def test_a_refused_login_is_reported_without_the_password_and_retried_once_fixed(
    mail_server: MailServer, tmp_path: Path
) -> None:
    wrong = "wrong:/@" + PASSWORD
    outbox = Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(mail_server, wrong))])
    delivery = outbox.deliver(NOTICE)
    [(_, reason)] = delivery.failed
    assert "535" in reason  # the relay's own answer
    state = (tmp_path / "outbox" / "delivery" / f"{NOTICE.id}.json").read_text()
    for text in (reason, state):
        assert wrong not in text and PASSWORD not in text and "s3cret" not in text
    assert not mail_server.arrived

    fixed = Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(mail_server))])
    assert fixed.retry_pending()[0].complete
    assert len(mail_server.arrived) == 1


def test_an_untrusted_relay_certificate_is_refused(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    for server in relay(ca, "starttls"):
        outbox = Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(server))])
        assert outbox.deliver(NOTICE).failed and not server.arrived


def test_each_transport_is_retried_alone(
    mail_server: MailServer, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    transports: list[Transport] = [
        SmtpTransport(smtp_settings(mail_server)),
        WebhookTransport(webhook_settings(receiver)),
    ]
    outbox = Outbox(tmp_path / "outbox", transports)
    receiver.failing = True
    delivery = outbox.deliver(NOTICE)
    assert delivery.sent == ("smtp",)
    [(transport, reason)] = delivery.failed
    assert transport == "webhook" and "503" in reason

    receiver.failing = False
    [retried] = outbox.retry_pending()
    assert retried.sent == ("webhook",)
    assert len(mail_server.arrived) == 1 and len(receiver.arrived) == 1


def test_a_webhook_over_https_behind_a_private_ca_is_trusted_through_requests_ca_bundle(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = WebhookReceiver(TOKEN, tls=server_context(ca)).start()
    try:
        outbox = Outbox(tmp_path / "outbox", [WebhookTransport(webhook_settings(server))])
        [(_, reason)] = outbox.deliver(NOTICE).failed  # the system's CAs do not know it
        assert reason.startswith("webhook: ") and not server.arrived
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        assert outbox.retry_pending()[0].sent == ("webhook",)
        assert [body["notice"] for body in server.arrived] == [NOTICE.id]
    finally:
        server.stop()


def test_a_wrong_webhook_token_is_reported_without_the_token(
    receiver: WebhookReceiver, tmp_path: Path
) -> None:
    wrong = "not-the-" + TOKEN
    outbox = Outbox(tmp_path / "outbox", [WebhookTransport(webhook_settings(receiver, wrong))])
    [(_, reason)] = outbox.deliver(NOTICE).failed
    assert "401" in reason and wrong not in reason and TOKEN not in reason
    assert not receiver.arrived


def test_notices_recorded_before_any_transport_are_not_sent_late(
    mail_server: MailServer, tmp_path: Path
) -> None:
    Outbox(tmp_path / "outbox").deliver(NOTICE)  # the outbox alone, as before
    outbox = Outbox(tmp_path / "outbox", [SmtpTransport(smtp_settings(mail_server))])
    assert outbox.retry_pending() == [] and not mail_server.arrived
    later = Notice("expiry-seu-0a1b-critical", "Caducitat", "Caduca aviat.", ("a@example.cat",))
    assert outbox.deliver(later).sent == ("smtp",)


def test_the_configuration_wires_both_transports_with_secrets_from_the_environment(
    mail_server: MailServer,
    receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = example_config(
        tmp_path / "certrenew.toml",
        data_dir=str(tmp_path / "data"),
        notices={
            "recipients": ["certificats@example.cat"],
            "smtp": {"host": "localhost", "port": mail_server.port, "sender": SENDER, "user": USER},
            "webhook": {"url": receiver.url},
        },
    )
    monkeypatch.setenv("CERTRENEW_NOTICES__SMTP__PASSWORD", PASSWORD)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("CERTRENEW_NOTICES__WEBHOOK__TOKEN_FILE", str(token_file))
    [channel] = build_notice_channels(load_settings(config))
    assert channel.deliver(NOTICE).sent == ("smtp", "webhook")
    assert len(mail_server.arrived) == 1 and len(receiver.arrived) == 1
    assert json.loads(json.dumps(receiver.arrived[0]))["title"] == NOTICE.subject


def test_a_password_in_the_configuration_file_is_refused(tmp_path: Path) -> None:
    config = example_config(
        tmp_path / "certrenew.toml",
        notices={"smtp": {"host": "relay", "sender": SENDER, "password": "x"}},
    )
    with pytest.raises(ConfigError, match="CERTRENEW_NOTICES__SMTP__PASSWORD"):
        load_settings(config)


def test_recipients_per_notice_kind() -> None:
    from certrenew.config import NoticeSettings

    notices = NoticeSettings(
        recipients=["team@example.cat"],
        managers=["boss@example.cat", "team@example.cat"],
        to_owner=["expiry", "escalation"],
    )
    owner = "owner@example.cat"
    assert notices.recipients_for("expiry", owner) == ("team@example.cat", owner)
    assert notices.recipients_for("expiry", None) == ("team@example.cat",)
    assert notices.recipients_for("revocation", owner) == ("team@example.cat",)
    assert notices.recipients_for("escalation", owner) == (
        "team@example.cat",
        owner,
        "boss@example.cat",
    )
