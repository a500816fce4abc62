"""`certrenew serve`'s HTTP port: monitors' alerts start renewals through the guard.

`POST /alerts` takes an Alertmanager webhook (version 4) or a plain JSON
alert (certrenew.alerts), with `Authorization: Bearer <intake token>`. Each
alert is matched to inventory certificates, each certificate's endpoints are
read live, and a certificate that really is due goes to the same guard as
detection's events and `certrenew renew` (certrenew.tasks.guard). Resolved
alerts, certificates that already serve a fresh certificate and certificates
already renewing are recorded, not acted on. Every alert is logged with what
was done with it, and counted in the metrics (`GET /metrics`).

Starlette on uvicorn, both already installed with Prefect (its own API
server runs on them): a maintained HTTP parser with keep-alive and header
limits, rather than the standard library's http.server, which its own
documentation does not recommend beyond basic use.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from certrenew.alerts import Alert, AlertError, match_certificates, parse_alerts
from certrenew.config import Settings
from certrenew.errors import PERSON_FIXABLE, CertRenewError
from certrenew.inventory import CertificateEntry, Inventory, load_inventory
from certrenew.probe import run_scan
from certrenew.renewal_need import RenewalDecision, renewal_decisions
from certrenew.tasks.guard import Admission, admit_renewal
from certrenew.triggers import Trigger

log = logging.getLogger("certrenew.intake")

Outcome = Literal[
    "started", "already_renewing", "resolved", "not_due", "unchecked", "unknown", "failed"
]
OUTCOMES: tuple[Outcome, ...] = (
    "started",
    "already_renewing",
    "resolved",
    "not_due",
    "unchecked",
    "unknown",
    "failed",
)
# Requests refused before any alert was read; counted apart from the alerts' outcomes.
Refusal = Literal["unauthorized", "too_large", "malformed"]

Admit = Callable[[Settings, str, Trigger], Admission]


@dataclass(frozen=True)
class AlertOutcome:
    """What was done with one alert for one certificate (or with an alert matching none)."""

    alert: str
    status: str
    outcome: Outcome
    note: str
    certificate: str | None = None
    run_url: str | None = None


class TooLarge(CertRenewError):
    pass


def live_check(
    settings: Settings, inventory: Inventory, entry: CertificateEntry
) -> RenewalDecision:
    """Read the certificate's endpoints and files now, as step 0 of the runbook does."""
    single = Inventory(defaults=inventory.defaults, certificates=[entry])
    scan = settings.scan
    results = run_scan(single, concurrency=scan.concurrency, timeout=scan.timeout_seconds)
    (decision,) = renewal_decisions(results, single)
    return decision


class Intake:
    """The alert handling of one serving process; `admit` is the guard (a test may wrap it)."""

    def __init__(
        self,
        settings: Settings,
        config: str | None,
        admit: Admit | None = None,
        counted: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.admit: Admit = admit or self._admit
        self.counted = counted

    def _admit(self, settings: Settings, name: str, trigger: Trigger) -> Admission:
        return admit_renewal(settings, name, trigger, config=self.config)

    def handle(self, alert: Alert, inventory: Inventory) -> list[AlertOutcome]:
        """Every certificate the alert names, checked live and passed to the guard when due."""
        entries = match_certificates(alert, inventory)
        if not entries:
            return [
                self._done(
                    alert,
                    "unknown",
                    f"no inventory certificate is named, has the domain or serves the target "
                    f"'{alert.names}': add it to the inventory or fix the alert's labels",
                )
            ]
        return [self._handle_one(alert, inventory, entry) for entry in entries]

    def _handle_one(
        self, alert: Alert, inventory: Inventory, entry: CertificateEntry
    ) -> AlertOutcome:
        if alert.status == "resolved":
            return self._done(alert, "resolved", "resolved: recorded, not acted on", entry.name)
        try:
            decision = live_check(self.settings, inventory, entry)
            newest = decision.newest
            if newest is None or newest.days_left is None:
                errors = "; ".join(f"{r.target}: {r.error}" for r in decision.unchecked)
                return self._done(
                    alert,
                    "unchecked",
                    f"the live check read nothing ({errors}): not acted on; fix the endpoint "
                    "or the inventory",
                    entry.name,
                )
            served = f"{newest.target} serves serial {newest.serial}, {newest.days_left} days left"
            if not decision.needs_renewal:
                return self._done(alert, "not_due", f"{served}: not due, not acted on", entry.name)
            trigger = Trigger("alert", f"{alert.source} (live check: {served})")
            admission = self.admit(self.settings, entry.name, trigger)
        except PERSON_FIXABLE as exc:
            return self._done(alert, "failed", f"not acted on: {exc}", entry.name)
        except Exception as exc:  # a bug or an outage: logged, answered, never a crash
            log.exception("alert %s for %s", alert.source, entry.name)
            return self._done(alert, "failed", f"not acted on: {type(exc).__name__}", entry.name)
        outcome: Outcome = "started" if admission.started else "already_renewing"
        return self._done(alert, outcome, admission.note, entry.name, admission.run_url)

    def _done(
        self,
        alert: Alert,
        outcome: Outcome,
        note: str,
        certificate: str | None = None,
        run_url: str | None = None,
    ) -> AlertOutcome:
        log.info("alert %s (%s): %s: %s", alert.source, alert.status, certificate or "-", note)
        self.counted(outcome)
        return AlertOutcome(alert.source, alert.status, outcome, note, certificate, run_url)


def bearer_problem(header: str | None, token: str | None) -> str | None:
    """Why the request's token is refused, or None when it is the intake's token."""
    if not token:
        return (
            "this intake has no token configured: set CERTRENEW_INTAKE__TOKEN (or "
            "intake.token_file) for `certrenew serve` and restart it"
        )
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "missing bearer token: send the header 'Authorization: Bearer <intake token>'"
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "wrong bearer token: use the intake token configured for `certrenew serve`"
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused once past `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body has {declared} bytes; at most {limit} are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the body has more than {limit} bytes; at most {limit} are accepted")
    return bytes(body)


def intake_app(
    intake: Intake,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    refused: Callable[[Refusal], None] = lambda _: None,
) -> Starlette:
    """The HTTP routes: POST /alerts, GET /metrics (when given), GET /healthz."""
    settings = intake.settings

    def refuse(kind: Refusal, status: int, message: str, **headers: str) -> Response:
        log.warning("alert request refused (%s): %s", status, message)
        refused(kind)
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    async def alerts(request: Request) -> Response:
        token = settings.intake.secret_token()
        if problem := bearer_problem(request.headers.get("authorization"), token):
            return refuse("unauthorized", 401, problem, **{"WWW-Authenticate": "Bearer"})
        try:
            body = await read_body(request, settings.intake.max_body_bytes)
            parsed = parse_alerts(body)
        except TooLarge as exc:
            return refuse("too_large", 413, str(exc))
        except AlertError as exc:
            return refuse("malformed", 400, str(exc))
        try:
            inventory = load_inventory(settings.inventory)
        except PERSON_FIXABLE as exc:
            log.error("alerts not handled: %s", exc)
            return JSONResponse({"error": f"the inventory cannot be read: {exc}"}, 503)
        done = [
            outcome
            for alert in parsed
            for outcome in await run_in_threadpool(intake.handle, alert, inventory)
        ]
        status = 422 if all(o.outcome == "unknown" for o in done) else 200
        return JSONResponse({"alerts": [asdict(o) for o in done]}, status_code=status)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    routes = [Route("/alerts", alerts, methods=["POST"]), Route("/healthz", healthz)]
    if metrics is not None:
        scrape = metrics

        async def metrics_page(_: Request) -> Response:
            data, content_type = await run_in_threadpool(scrape)
            return Response(data, media_type=content_type)

        routes.append(Route("/metrics", metrics_page))
    return Starlette(routes=routes)


class HttpPort:
    """uvicorn serving an app in a thread of this process, on the configured address."""

    def __init__(self, app: Starlette, address: str, port: int) -> None:
        import uvicorn

        self.address = address
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host=address, port=port, log_level="warning", access_log=False, lifespan="off"
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="certrenew-http", daemon=True)

    @property
    def port(self) -> int:
        (server,) = self.server.servers
        return int(server.sockets[0].getsockname()[1])

    def start(self, timeout: float = 30) -> HttpPort:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise CertRenewError(
                    f"cannot listen on {self.address}:{self.server.config.port} (in use, or not "
                    "an address of this machine): set [intake] address and port, or port = 0 "
                    "for no HTTP port"
                )
            time.sleep(0.05)
        log.info("listening on http://%s:%d (POST /alerts, GET /metrics)", self.address, self.port)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
