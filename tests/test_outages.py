"""Outages and slowness at every integration step: the step waits with a clear reason, and
after recovery the renewal's work is there exactly once.

Five faults, each applied to every step that talks to an outside system, on
the real libraries against the lab's servers:

- slow: the server handles the request and answers after the client's timeout;
- refused: nothing listens on the port;
- throttled: 429 with a `Retry-After` far longer than the retry policy's cap;
- tls: the endpoint's certificate is untrusted or names another host;
- cut: the server does the work, and the outage starts before its answer.

For each (step, fault): the step runs under the fault and must stop with an
error the renewal waits on (tasks.context.RECOVERABLE), whose line in
`certrenew status` and in the wait form names the system and says what to do,
on one line, with no secret and no traceback. Then the fault is lifted and the
step runs again as the renewal retries it after the form is submitted (a new
process: a new client), and its work must be there exactly once. Retry waits
are recorded, not slept. The matrix (step × fault → outcome) is printed.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme
from pydantic import BaseModel, SecretStr, ValidationError

from certrenew.adapters.archive import store_file
from certrenew.adapters.archive.sharepoint import SharePointArchive
from certrenew.adapters.ca import CertificateOrder
from certrenew.adapters.ca.acme import AcmeRoute
from certrenew.adapters.notice import Notice, Transport
from certrenew.adapters.notice.outbox import Outbox
from certrenew.adapters.notice.smtp import SmtpTransport
from certrenew.adapters.notice.webhook import WebhookTransport
from certrenew.adapters.tracker import Attachment, NewTicket, ensure_ticket
from certrenew.adapters.tracker.create_intents import CreateIntents
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.adapters.wiring import build_notice_channels
from certrenew.config import (
    AcmeRouteSettings,
    JiraSettings,
    RecoverySettings,
    SharePointSettings,
    SmtpSettings,
    WebhookSettings,
    load_settings,
)
from certrenew.deployments.outage_retry import pause_before_retry, retry_waiting_steps
from certrenew.errors import ServiceUnavailable, TicketNotFound
from certrenew.lab.jira_server import JiraServer
from certrenew.lab.listener import Listener
from certrenew.lab.mail import MailServer, WebhookReceiver
from certrenew.lab.pebble import Pebble, running_pebble
from certrenew.lab.people import DemoPeople
from certrenew.lab.sharepoint_server import HttpsService, Request
from certrenew.pki.csr import make_key_and_csr
from certrenew.renewal import renewal_id
from certrenew.rules import COMMENT_MARKER, step_marker
from certrenew.standing import OpenRenewal, RunSnapshot, open_renewal
from certrenew.tasks.context import RECOVERABLE
from certrenew.tasks.forms import (
    RETRY_ANSWERER,
    Question,
    pause_key,
    retries_by_itself,
    wait_reason,
    wait_text,
)
from certrenew.tasks.notices import report_failures, retry_pending_notices
from certrenew.tasks.status import open_renewals
from certrenew.tasks.tickets import post_once
from tests.fixtures_renewal import RenewalLab, RenewalRun, served_serial
from tests.fixtures_sharepoint import LIBRARY, SharePointTestbed
from tests.test_acme_route import RULES
from tests.test_renewal_integrations import (
    SMTP_PASSWORD as RELAY_PASSWORD,
)
from tests.test_renewal_integrations import (
    WEBHOOK_TOKEN,
    live_config,
    notice_channels,
)

FAULTS = ("slow", "refused", "throttled", "tls", "cut")
TIMEOUT = 0.4  # the clients' timeout: a stalled answer comes after it
STALL = 1.0
LONG_RETRY_AFTER = "3600"
TOKEN = "jira-token-" + "must-not-show-5c1e"

MATRIX: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module", autouse=True)
def matrix() -> Iterator[None]:
    yield
    print("\nstep × fault → outcome (the reason shown while waiting, then the recovery)")
    for (system, step, fault), outcome in sorted(MATRIX.items()):
        print(f"  {system:10} {step:18} {fault:10} {outcome}")


@dataclass(frozen=True)
class Pki:
    """A CA the clients trust, and the certificates a server may present."""

    bundle: Path
    trusted: ssl.SSLContext
    untrusted: ssl.SSLContext  # from a CA nobody trusts
    wrong_host: ssl.SSLContext  # from the trusted CA, for another name


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca, stranger = trustme.CA(), trustme.CA()
    bundle = tmp_path_factory.mktemp("outage-pki") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return Pki(
        bundle,
        server_context(ca.issue_cert("127.0.0.1", "localhost")),
        server_context(stranger.issue_cert("127.0.0.1", "localhost")),
        server_context(ca.issue_cert("jira.example.org", "sharepoint.example.org")),
    )


def status_line(step: str, problem: Exception) -> str:
    """What `certrenew status` says of a run waiting on `step` after `problem`: step, state."""
    snapshot = RunSnapshot(
        run_name="renew seu.example.cat · 3f9a1c",
        url="",
        certificate="seu.example.cat",
        renewal="r1",
        state_type="PAUSED",
        state_name="Suspended",
        since=datetime.now(UTC),
        pause_key=pause_key(Question.WAIT, step, 1),
        wait_reason=wait_reason(wait_text(step, problem)),
    )
    renewal = open_renewal(snapshot)
    return f"{renewal.step} · {renewal.state}"


# What each fault's line must say (what failed), beside the system and what to do.
SAYS = {
    "slow": r"no answer|did not answer|timed out|Timeout",
    "refused": r"no answer|refused|cannot be reached|ConnectionError|unavailable",
    "throttled": r"asks to wait|HTTP 429|rateLimited",
    "tls": r"certificate",
    "cut": r"no answer|refused|cannot be reached|ConnectionError|unavailable",
}
WHAT_TO_DO = r"check|set |ask |waits|tries again|retr|resume"


def check_waiting_line(
    step: str, fault: str, problem: Exception, system: str, secrets: tuple[str, ...]
) -> str:
    """The reason as status and form show it: one line, system, what failed, what to do."""
    assert isinstance(problem, RECOVERABLE), f"{type(problem).__name__} fails the run: {problem}"
    line = status_line(step, problem)
    form = wait_text(step, problem)
    reason = str(problem)
    assert "\n" not in reason and reason in form, reason
    assert line.startswith(f"waiting on {step} · waiting for a fix: "), line
    assert system in reason, f"{system!r} not named: {reason}"
    assert re.search(SAYS[fault], reason), f"{fault}: {reason}"
    assert re.search(WHAT_TO_DO, reason), f"nothing to do in: {reason}"
    for text in (line, form):
        assert "Traceback" not in text
        assert not [secret for secret in secrets if secret in text]
    return reason


def short(reason: str) -> str:
    return reason if len(reason) <= 90 else reason[:87] + "..."


# -- Jira ------------------------------------------------------------------------------------


@dataclass
class JiraWorld:
    """The Jira server, the settings that reach it, and what the step before left there."""

    server: JiraServer
    settings: JiraSettings
    intents: Path
    waits: list[float] = field(default_factory=list)
    made: dict[str, Any] = field(default_factory=dict)

    def tracker(self) -> JiraTracker:
        """A tracker as a new process builds it (a resumed run): same intents folder."""
        return JiraTracker(
            self.settings,
            sleep=self.waits.append,
            clock=lambda: 1_800_000_000.0 + sum(self.waits),
            intents=CreateIntents(self.intents),
        )


def new_ticket(kind: str) -> NewTicket:
    return NewTicket(
        project="SIS",
        summary=f"Renovació seu.example.cat ({kind})",
        description="Certificat a renovar.",
        label=f"certrenew-r1-{kind}",
        labels=("certrenew",),
    )


@dataclass(frozen=True)
class JiraStep:
    """One integration step: what it needs first, its call, its side effect's request, its check."""

    prepare: Callable[[JiraWorld, JiraTracker], None]
    run: Callable[[JiraWorld, JiraTracker], object]
    request: tuple[str, str]  # (method, path) of the request whose answer a cut loses
    check: Callable[[JiraWorld, object], None]


def _two_tickets(world: JiraWorld, tracker: JiraTracker) -> None:
    world.made["csr"] = tracker.create_ticket(new_ticket("csr")).key
    world.made["install"] = tracker.create_ticket(new_ticket("install")).key


def _attached(world: JiraWorld, tracker: JiraTracker) -> None:
    key = tracker.create_ticket(new_ticket("csr")).key
    world.made["csr"] = key
    world.made["key"] = tracker.add_attachment(key, "seu.example.cat.key", b"key bytes")
    world.made["csr_file"] = tracker.add_attachment(key, "seu.example.cat.csr", b"csr bytes")


def _one_ticket(world: JiraWorld, tracker: JiraTracker) -> None:
    world.made["csr"] = tracker.create_ticket(new_ticket("csr")).key


def _nothing(world: JiraWorld, tracker: JiraTracker) -> None:
    tracker.whoami()  # connected before the fault, as a renewal's earlier steps were


def _check_one_ticket(world: JiraWorld, _: object) -> None:
    assert len(world.server.issues_labelled("certrenew-r1-csr")) == 1


def _check_one_link(world: JiraWorld, _: object) -> None:
    assert len(world.server.links) == 1, world.server.links


def _check_one_comment(world: JiraWorld, _: object) -> None:
    comments = world.server.issues[world.made["csr"]].comments
    marked = [c for c in comments if step_marker("collect-csr-and-key") in c["body"]]
    assert len(marked) == 1, comments


def _check_read(world: JiraWorld, data: object) -> None:
    assert data == b"key bytes"


def _check_deleted(world: JiraWorld, _: object) -> None:
    left = world.server.issues[world.made["csr"]].attachments
    assert left == [world.made["csr_file"].id], left


def _check_closed(world: JiraWorld, _: object) -> None:
    assert world.server.issues[world.made["csr"]].status == "Done"
    done = [e for e in world.server.calls("POST", r"/transitions$") if e.status == 204]
    assert len(done) == 1, [(e.status, e.fault) for e in done]


def _key(world: JiraWorld) -> str:
    return str(world.made["csr"])


def _attachment(world: JiraWorld) -> Attachment:
    attachment = world.made["key"]
    assert isinstance(attachment, Attachment)
    return attachment


JIRA_STEPS = {
    "create": JiraStep(
        _nothing,
        lambda w, t: ensure_ticket(t, new_ticket("csr")),
        ("POST", r"/issue$"),
        _check_one_ticket,
    ),
    "link": JiraStep(
        _two_tickets,
        lambda w, t: t.link_tickets(w.made["install"], w.made["csr"], "Relates"),
        ("POST", r"/issueLink$"),
        _check_one_link,
    ),
    "comment": JiraStep(
        _one_ticket,
        lambda w, t: post_once(t, _key(w), "collect-csr-and-key", "CSR i clau rebuts."),
        ("POST", r"/comment$"),
        _check_one_comment,
    ),
    "attachment read": JiraStep(
        _attached,
        lambda w, t: t.download_attachment(_key(w), _attachment(w)),
        ("GET", r"/attachment/content/|/secure/attachment/"),
        _check_read,
    ),
    "attachment delete": JiraStep(
        _attached,
        lambda w, t: t.delete_attachment(_key(w), _attachment(w)),
        ("DELETE", r"/attachment/"),
        _check_deleted,
    ),
    "close": JiraStep(
        _one_ticket,
        lambda w, t: t.close_ticket(_key(w)),
        ("POST", r"/transitions$"),
        _check_closed,
    ),
}


def start_jira_fault(fault: str, world: JiraWorld, step: JiraStep, pki: Pki) -> None:
    server = world.server
    if fault == "slow":
        method, path = step.request
        server.stall(STALL, path, method, times=None)
    elif fault == "refused":
        server.go_down()
    elif fault == "throttled":
        server.fail(429, times=None, headers={"Retry-After": LONG_RETRY_AFTER})
    elif fault == "tls":
        server.come_back(tls=pki.wrong_host)
    elif fault == "cut":
        method, path = step.request
        server.lose_response(path, method, then_down=True)


def lift_jira_fault(fault: str, world: JiraWorld, pki: Pki) -> None:
    world.server.faults.clear()
    if fault in ("refused", "tls", "cut"):
        world.server.come_back(tls=pki.trusted)


@pytest.fixture
def jira_world(pki: Pki, tmp_path: Path) -> Iterator[JiraWorld]:
    server = JiraServer(tls=pki.trusted, token=TOKEN).start()
    settings = JiraSettings(
        url=server.url,
        token=SecretStr(TOKEN),
        ca_bundle=pki.bundle,
        timeout_seconds=TIMEOUT,
        retry_attempts=2,
        retry_base_delay_seconds=0.01,
        retry_max_delay_seconds=0.05,
        search_lag_seconds=1,
    )
    try:
        yield JiraWorld(server, settings, tmp_path / "intents")
    finally:
        server.stop()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step_name", list(JIRA_STEPS))
def test_jira_step_waits_with_a_clear_reason_and_recovers_once(
    jira_world: JiraWorld, pki: Pki, step_name: str, fault: str
) -> None:
    world, step = jira_world, JIRA_STEPS[step_name]
    MATRIX[("jira", step_name, fault)] = "did not finish"
    step.prepare(world, world.tracker())
    tracker = world.tracker()
    tracker.whoami()
    start_jira_fault(fault, world, step, pki)
    cell = ("jira", step_name, fault)
    try:
        done = step.run(world, tracker)
    except Exception as stopped:
        reason = check_waiting_line(step_name, fault, stopped, world.server.url, (TOKEN,))
        MATRIX[cell] = f"waits: {short(reason)} → not recovered"
        lift_jira_fault(fault, world, pki)
        done = step.run(world, world.tracker())
        MATRIX[cell] = f"waits: {short(reason)} → recovered, once"
    else:
        MATRIX[cell] = "rode it out within its retries, once"
        lift_jira_fault(fault, world, pki)
    step.check(world, done)


# -- SharePoint (and its authority, Microsoft Entra) ----------------------------------------

FOLDER = "CERTIFICATS/CDS/CESICAT/2026/seu.example.cat"
FILES = {
    "seu.example.cat.crt": b"-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n",
    "manifest.json": b'{"domain": "seu.example.cat"}\n',
}


@dataclass(frozen=True)
class ArchiveStep:
    """A step of the archiving: which file it stores, which server and request a fault hits."""

    name: str  # the file stored
    on_authority: bool  # the fault hits the sign-in, not the site
    request: Callable[[Request], bool]


def _upload_of(name: str) -> Callable[[Request], bool]:
    return lambda r: r.method == "POST" and "/files/add" in r.path.lower() and name in r.path


ARCHIVE_STEPS = {
    "sign-in": ArchiveStep("seu.example.cat.crt", True, lambda r: r.method == "POST"),
    "upload": ArchiveStep("seu.example.cat.crt", False, _upload_of("seu.example.cat.crt")),
    "manifest": ArchiveStep("manifest.json", False, _upload_of("manifest.json")),
}


def start_archive_fault(fault: str, service: HttpsService, step: ArchiveStep, pki: Pki) -> None:
    if fault == "slow":
        service.stall(STALL, count=1000, when=step.request)
    elif fault == "refused":
        service.go_down()
    elif fault == "throttled":
        service.inject(429, count=1000, retry_after=LONG_RETRY_AFTER)
    elif fault == "tls":
        service.come_back(tls=pki.untrusted)
    elif fault == "cut":
        service.lose_answers(1, when=step.request, then_down=True)


def lift_archive_fault(service: HttpsService) -> None:
    service.clear_faults()
    service.come_back(tls=service.server_context)


def archive_files(archive: SharePointArchive, names: list[str]) -> None:
    for name in names:
        store_file(archive, FOLDER, name, FILES[name])


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step_name", list(ARCHIVE_STEPS))
def test_archive_step_waits_with_a_clear_reason_and_recovers_once(
    sharepoint: SharePointTestbed, pki: Pki, step_name: str, fault: str
) -> None:
    step = ARCHIVE_STEPS[step_name]
    names = list(FILES) if step.name == "manifest.json" else [step.name]
    before = [name for name in FILES if name != step.name and step.name == "manifest.json"]
    service: HttpsService = sharepoint.authority if step.on_authority else sharepoint.site
    secret = sharepoint.credential.key_pem.decode()
    cell = ("sharepoint", step_name, fault)
    MATRIX[cell] = "did not finish"

    def archive() -> SharePointArchive:
        # A new process's archive: no token, no form digest cached.
        return sharepoint.archive(timeout_seconds=TIMEOUT, retry_attempts=3)

    archive_files(archive(), before)
    try:
        start_archive_fault(fault, service, step, pki)
        # Every attempt meets the fault (each repeats the request it hits): the step waits.
        with pytest.raises(Exception) as stopped:
            archive_files(archive(), [n for n in names if n not in before])
        system = sharepoint.authority.origin if step.on_authority else sharepoint.site.origin
        reason = check_waiting_line(step_name, fault, stopped.value, system, (secret,))
        named = "the sign-in authority" if step.on_authority else "SharePoint"
        assert fault == "tls" or f"{named} at {system}" in reason, reason
        MATRIX[cell] = f"waits: {short(reason)} → not recovered"
        lift_archive_fault(service)
        archive_files(archive(), names)
        MATRIX[cell] = f"waits: {short(reason)} → recovered, once"
    finally:
        lift_archive_fault(service)
    where = f"{sharepoint.site.site_path}/{LIBRARY}/{FOLDER}"
    stored = [path.rpartition("/")[2] for path in sharepoint.site.files if path.startswith(where)]
    assert sorted(stored) == sorted(names)
    for name in names:
        assert sharepoint.site.file(f"{LIBRARY}/{FOLDER}/{name}") == FILES[name]


# -- notices: SMTP relay and webhook ---------------------------------------------------------

SMTP_PASSWORD = "smtp-" + "pw-must-not-show-8d2a"
HOOK_TOKEN = "hook-" + "token-must-not-show-41b7"
NOTICE = Notice(
    "r1-revoked",
    "Certificat revocat: seu.example.cat",
    "El certificat anterior de seu.example.cat s'ha revocat.",
    ("certificats@example.cat",),
)


@dataclass
class Notices:
    relay: MailServer
    receiver: WebhookReceiver

    def transport(self, name: str) -> Transport:
        if name == "smtp":
            return SmtpTransport(
                SmtpSettings(
                    host="localhost",
                    port=self.relay.port,
                    security="starttls",
                    sender="certrenew@example.cat",
                    user="certrenew",
                    password=SecretStr(SMTP_PASSWORD),
                    timeout_seconds=TIMEOUT,
                )
            )
        return WebhookTransport(
            WebhookSettings(
                url=self.receiver.url, token=SecretStr(HOOK_TOKEN), timeout_seconds=TIMEOUT
            )
        )

    def arrived(self, name: str) -> list[str]:
        """The notice id of each copy that arrived."""
        if name == "smtp":
            return [str(mail.message["X-Certrenew-Notice"]) for mail in self.relay.arrived]
        return [str(body["notice"]) for body in self.receiver.arrived]


@pytest.fixture
def notices(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[Notices]:
    # Both trust the lab CA the way an operator makes a host trust a private CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.bundle))
    relay = MailServer(pki.trusted, "starttls", "certrenew", SMTP_PASSWORD).start()
    receiver = WebhookReceiver(HOOK_TOKEN, tls=pki.trusted).start()
    try:
        yield Notices(relay, receiver)
    finally:
        relay.stop()
        receiver.stop()


def start_notice_fault(fault: str, server: MailServer | WebhookReceiver, pki: Pki) -> None:
    if fault == "slow":
        server.stall_seconds = STALL
    elif fault == "refused":
        server.stop()
    elif fault == "throttled":
        if isinstance(server, WebhookReceiver):
            server.throttle_retry_after = LONG_RETRY_AFTER
        else:
            server.failing = True  # SMTP's "try again later": 451, no Retry-After
    elif fault == "tls":
        server.come_back(tls=pki.untrusted)
    elif fault == "cut":
        server.stall_seconds, server.stall_after_taking = STALL, True


def lift_notice_fault(server: MailServer | WebhookReceiver, pki: Pki) -> None:
    server.stall_seconds, server.stall_after_taking, server.failing = 0.0, False, False
    if isinstance(server, WebhookReceiver):
        server.throttle_retry_after = None
    server.come_back(tls=pki.trusted)


@pytest.mark.timeout(60)  # a stalled relay or receiver must not hang the step
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("channel", ["smtp", "webhook"])
def test_notice_is_kept_pending_with_a_clear_reason_and_sent_once(
    notices: Notices, pki: Pki, tmp_path: Path, channel: str, fault: str
) -> None:
    server: MailServer | WebhookReceiver = notices.relay if channel == "smtp" else notices.receiver
    cell = ("notice", channel, fault)
    MATRIX[cell] = "did not finish"
    outbox = Outbox(tmp_path / "outbox", [notices.transport(channel)])
    start_notice_fault(fault, server, pki)
    try:
        [line] = report_failures([outbox.deliver(NOTICE)])
    finally:
        lift_notice_fault(server, pki)
    assert "\n" not in line and "Traceback" not in line, line
    assert f"not delivered by {channel}: " in line and "retried next run" in line, line
    assert SMTP_PASSWORD not in line and HOOK_TOKEN not in line
    assert re.search(NOTICE_SAYS[fault], line), f"{fault}: {line}"
    MATRIX[cell] = f"pending: {short(line.split(': ', 1)[1])} → not recovered"
    # The next detection run retries what is pending, from a new process.
    [retried] = Outbox(tmp_path / "outbox", [notices.transport(channel)]).retry_pending()
    assert retried.complete
    # The relay stalls before the message is sent (at RCPT); the receiver stalls with the
    # body already sent, and takes it when its stall ends, whenever the retry was.
    if fault == "cut" or (fault == "slow" and channel == "webhook"):
        # Neither SMTP nor a webhook can tell an answer lost after the message was taken,
        # or a message taken after the client stopped waiting, from a refusal: the copy
        # sent again carries the same notice id to drop it by.
        deadline = time.monotonic() + STALL + 10
        while len(notices.arrived(channel)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert notices.arrived(channel) == [NOTICE.id, NOTICE.id]
        MATRIX[cell] = f"pending: {short(line.split(': ', 1)[1])} → sent again, same id"
    else:
        assert notices.arrived(channel) == [NOTICE.id]
        MATRIX[cell] = f"pending: {short(line.split(': ', 1)[1])} → sent, once"


NOTICE_SAYS = {
    "slow": r"timed out|Timeout|timeout",
    "refused": r"refused|Connection|connect",
    "throttled": r"429|451|try again later",
    "tls": r"certificate|SSL|TLS",
    "cut": r"timed out|Timeout|timeout",
}


# -- the ACME route (Pebble, and stand-ins for a CA that stalls, throttles or cuts) ------------

ACME_NAMES = ("acme.test.example.cat",)


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    folder = tmp_path_factory.mktemp("outage-pebble")
    with running_pebble(folder, http_port=1, eab_required=False, always_valid=True) as running:
        yield running


def faulty_ca(fault: str) -> type[BaseHTTPRequestHandler]:
    """An ACME server as the CA is while `fault` lasts: stalled, throttling or cut off."""

    class Faulty(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            if fault == "slow":
                time.sleep(STALL)
            if fault in ("slow", "cut"):
                self.close_connection = True
                return
            problem = json.dumps(
                {
                    "type": "urn:ietf:params:acme:error:rateLimited",
                    "detail": "too many new orders recently",
                }
            ).encode()
            self.send_response(429)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Retry-After", LONG_RETRY_AFTER)
            self.send_header("Content-Length", str(len(problem)))
            self.end_headers()
            self.wfile.write(problem)

        do_POST = do_HEAD = do_GET

    return Faulty


def acme_route(pebble: Pebble, folder: Path, **changes: object) -> AcmeRoute:
    fields: dict[str, object] = {
        "kind": "acme",
        "directory_url": pebble.directory_url,
        "account_key_file": folder / "account.key",
        "webroot": folder / "webroot",
        "ca_bundle": pebble.ca_bundle,
        "timeout_seconds": 60,
        "request_timeout_seconds": TIMEOUT,
    }
    return AcmeRoute(AcmeRouteSettings.model_validate(fields | changes))


@pytest.mark.timeout(120)  # a stalled CA must not hang the step
@pytest.mark.parametrize("fault", FAULTS)
def test_acme_order_waits_with_a_clear_reason_and_goes_through_after(
    pebble: Pebble, pki: Pki, tmp_path: Path, fault: str
) -> None:
    cell = ("acme", "order", fault)
    MATRIX[cell] = "did not finish"
    _, csr = make_key_and_csr(RULES, ACME_NAMES)
    order = CertificateOrder(ACME_NAMES[0], ACME_NAMES, csr.decode(), "generated by the flow")
    stand_in: Listener | None = None
    if fault == "refused":
        stand_in = Listener(faulty_ca(fault), pki.trusted)  # bound, never started, then closed
        stand_in.stop()
    elif fault != "tls":
        stand_in = Listener(faulty_ca(fault), pki.trusted)
        stand_in.start()
    if stand_in is not None:
        route = acme_route(
            pebble,
            tmp_path,
            directory_url=f"https://127.0.0.1:{stand_in.port}/dir",
            ca_bundle=pki.bundle,
        )
    else:
        route = acme_route(pebble, tmp_path, ca_bundle=pki.bundle)  # not Pebble's CA
    try:
        with pytest.raises(Exception) as stopped:
            route.request(order)
    finally:
        if stand_in is not None:
            stand_in.stop()
    system = route.settings.directory_url
    reason = check_waiting_line("request-certificate", fault, stopped.value, system, ())
    MATRIX[cell] = f"waits: {short(reason)} → not recovered"
    # The CA is back (or the bundle fixed): the order goes through, one certificate.
    reference = acme_route(pebble, tmp_path).request(order)
    chain = acme_route(pebble, tmp_path).collect(reference)
    assert chain.count(b"BEGIN CERTIFICATE") >= 1
    MATRIX[cell] = f"waits: {short(reason)} → ordered, once"


# -- one whole renewal across several faults, as support staff see it ------------------------


def status_of(run: RenewalRun) -> OpenRenewal:
    """The run's line in `certrenew status`, read from the Prefect API as the command reads it."""
    [found] = [r for r in open_renewals(None) if r.run.endswith(str(run.id)[:6])]
    return found


def check_waiting(run: RenewalRun, key: str, system: str, says: str) -> str:
    """While the run waits at `key`: status and form show the step and the reason."""
    form = run.wait_paused(key)
    found = status_of(run)
    step = key.removeprefix("wait-").rstrip("-0123456789")
    assert found.step == f"waiting on {step}", found
    reason = found.state.removeprefix("waiting for a fix: ")
    assert found.state.startswith("waiting for a fix: ") and reason in form, found.state
    assert "\n" not in found.state and "Traceback" not in found.state + form
    assert system in reason and re.search(says, reason), reason
    assert re.search(WHAT_TO_DO, reason), reason
    return reason


def _answer(run: RenewalRun, key: str) -> dict[str, object]:
    """The answer stored for the form `key` of `run`."""
    from prefect.input.actions import read_flow_run_input
    from prefect.input.run_input import keyset_from_base_key

    response = keyset_from_base_key(f"suspended-{key}")["response"]
    stored = read_flow_run_input(response, flow_run_id=run.id)
    assert isinstance(stored, dict), stored
    return stored


@pytest.fixture
def team_relay() -> Iterator[MailServer]:
    """The team's relay as the whole-renewal tests configure it: a login, no TLS."""
    server = MailServer(None, "none", "certrenew", RELAY_PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def team_hook() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(WEBHOOK_TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.prefect
def test_a_renewal_through_outages_of_every_system_completes_once(
    renewal_lab: RenewalLab,
    jira_server: JiraServer,
    sharepoint: SharePointTestbed,
    tmp_path: Path,
    team_relay: MailServer,
    team_hook: WebhookReceiver,
) -> None:
    lab, relay, receiver = renewal_lab, team_relay, team_hook
    name = "outages"
    domain, server = lab.serve_certificate(name)
    rid = renewal_id(domain, served_serial(lab, name))
    channels = notice_channels(tmp_path, relay, receiver)
    for transport in ("smtp", "webhook"):
        channels[transport]["timeout_seconds"] = 1  # type: ignore[index]
    config = live_config(
        lab,
        tmp_path / "certrenew.toml",
        jira_server,
        sharepoint,
        f"{name}-owner",
        channels,
        timeout_seconds=2,
    )
    settings = load_settings(config)
    people = DemoPeople(settings, lab.ca, server, domain, lambda _: None)
    run = lab.start(name, config=str(config))
    said: dict[str, str] = {}

    # Jira goes away while the systems team works: refused connections. When it is
    # back, the serving process retries the step once the pause is over: nobody submits.
    run.wait_paused("csr-1")
    answer = people.answer("csr-1", rid)
    jira_server.go_down()
    run.resume(**answer)
    key = pause_key(Question.WAIT, "collect-csr-and-key", 2, 1)
    said["jira refused"] = check_waiting(run, key, jira_server.url, SAYS["refused"])
    assert retries_by_itself(run.wait_paused(key))
    retry = RecoverySettings(outage_retry_seconds=600)
    assert retry_waiting_steps(retry) == []  # its pause is not over yet
    jira_server.come_back()
    later = datetime.now(UTC) + timedelta(seconds=601)
    assert retry_waiting_steps(retry, now=later) == [run.id]

    assert _answer(run, key)["answered_by"] == RETRY_ANSWERER

    # SharePoint takes the certificate, and its outage starts before it can say so.
    run.answer_each(people, rid, "ca-choice", "ca-request")
    run.wait_paused("certificate-1")
    answer = people.answer("certificate-1", rid)
    sharepoint.site.lose_answers(1, when=_upload_of(f"{domain}.crt"), then_down=True)
    run.resume(**answer)
    key = pause_key(Question.WAIT, "archive-artifacts", 1)
    said["sharepoint cut"] = check_waiting(run, key, sharepoint.site.origin, SAYS["cut"])
    sharepoint.site.clear_faults()
    sharepoint.site.come_back()
    run.resume(action="Check again", answered_by="anna")

    # Jira throttles the verification comment for an hour.
    run.wait_paused("install-1")
    answer = people.answer("install-1", rid)
    jira_server.fail(429, r"/comment$", "POST", times=None, headers={"Retry-After": "3600"})
    run.resume(**answer)
    key = pause_key(Question.WAIT, "comment-verification", 1)
    said["jira throttled"] = check_waiting(run, key, jira_server.url, SAYS["throttled"])
    jira_server.faults.clear()
    run.resume(action="Check again", answered_by="anna")

    # The relay stalls when the revocation notice goes: the run does not wait for it.
    relay.stall_seconds = 3
    run.answer_each(people, rid, "retire")
    assert run.wait_final().is_completed()
    relay.stall_seconds = 0
    assert relay.arrived == []
    assert retry_pending_notices(build_notice_channels(settings)) == []  # the next daily run

    # Exactly once: tickets, comments per step marker, archived files, notices.
    for kind in ("csr", "owner", "install"):
        assert len(jira_server.issues_labelled(f"{rid}-{kind}")) == 1, kind
    for issue in jira_server.issues.values():
        markers = [
            line.split("]")[0]
            for comment in issue.comments
            for line in comment["body"].splitlines()
            if line.startswith(COMMENT_MARKER)
        ]
        assert len(markers) == len(set(markers)), (issue.key, markers)
    folder = f"{sharepoint.site.site_path}/{LIBRARY}/CERTIFICATS/CDS/CESICAT/"
    archived = sorted(p.rpartition("/")[2] for p in sharepoint.site.files if p.startswith(folder))
    assert archived == sorted(["manifest.json", f"{domain}.crt", f"{domain}.key", f"{domain}.csr"])
    assert [m.message["X-Certrenew-Notice"] for m in relay.arrived] == [f"{rid}-revoked"]
    assert [body["notice"] for body in receiver.arrived] == [f"{rid}-revoked"]
    print("\nwhole renewal: what status showed while it waited")
    for fault, reason in said.items():
        print(f"  {fault:16} {reason}")


# -- every wait is bounded ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "values"),
    [
        (SmtpSettings, {"host": "relay", "sender": "a@b.cat", "timeout_seconds": 1e9}),
        (WebhookSettings, {"url": "https://hooks.example.cat/x", "timeout_seconds": 1e9}),
        (JiraSettings, {"retry_max_delay_seconds": 1e9}),
        (JiraSettings, {"retry_base_delay_seconds": 1e9}),
        (SharePointSettings, {"retry_max_delay_seconds": 1e9}),
        (
            AcmeRouteSettings,
            {
                "kind": "acme",
                "directory_url": "https://ca/dir",
                "account_key_file": "k",
                "request_timeout_seconds": 1e9,
            },
        ),
    ],
)
def test_a_timeout_or_retry_wait_without_end_is_refused(
    section: type[BaseModel], values: dict[str, object]
) -> None:
    """A wait that never ends would hold a step (and its renewal) forever."""
    with pytest.raises(ValidationError, match="less than or equal to 3600"):
        section.model_validate(values)


# -- a step waiting on a system that was away is retried by the serving process ---------------


def test_only_waits_on_a_system_that_was_away_are_retried_by_themselves() -> None:
    away = ServiceUnavailable("Jira at https://jira.example.cat did not answer")
    gone = TicketNotFound("SIS-12 no longer exists in Jira: restore it")
    assert retries_by_itself(wait_text("close-tickets", away))
    assert not retries_by_itself(wait_text("close-tickets", gone))
    base = 300.0
    pauses = [pause_before_retry(f"wait-collect-csr-and-key-2-{n}", base) for n in range(1, 7)]
    assert [p.total_seconds() for p in pauses] == [300, 600, 1200, 2400, 2400, 2400]
