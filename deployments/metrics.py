"""Prometheus metrics on `certrenew serve`'s HTTP port (`GET /metrics`).

Per certificate and target, in the style of the community's certificate
exporters (blackbox_exporter's `probe_ssl_earliest_cert_expiry`, the
x509-certificate-exporter's `x509_cert_not_after`):

- `certrenew_certificate_not_after_seconds{name,domain,target}`: notAfter of
  the certificate last read there, as Unix time;
- `certrenew_certificate_last_probe_success_timestamp_seconds{...}`: when it
  was last read successfully; `certrenew_certificate_probe_success{...}`: 1 if
  the last read worked;
- `certrenew_renewals_open{step}`: unfinished renewal runs by the step they
  wait at (the question's name, or scheduled/pending/running), read from the
  Prefect API at each scrape;
- `certrenew_alerts_received_total{outcome}` and
  `certrenew_alert_requests_refused_total{reason}` from the alert intake.

The certificates are read every `[intake] probe_interval_seconds` by a
thread of the serving process, so a scrape costs no probe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from certrenew.config import Settings
from certrenew.deployments.intake import OUTCOMES
from certrenew.inventory import load_inventory
from certrenew.probe import ProbeResult, run_scan
from certrenew.tasks.forms import question_of

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

log = logging.getLogger("certrenew.metrics")

TARGET_LABELS = ["name", "domain", "target"]


@dataclass
class _Seen:
    not_after: float | None = None
    last_success: float | None = None
    success: bool = False


class CertificateProbes(Collector):
    """What the last reads of every inventory target showed, as metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str], _Seen] = {}

    def record(self, results: Iterable[ProbeResult], at: float) -> None:
        """One whole scan: targets no longer in it (removed from the inventory) are dropped."""
        seen: dict[tuple[str, str, str], _Seen] = {}
        with self._lock:
            for result in results:
                key = (result.name, result.domain, result.target)
                before = self._seen.get(key, _Seen())
                when = result.not_after_datetime
                if result.status != "error" and when is not None:
                    seen[key] = _Seen(when.timestamp(), at, True)
                else:
                    seen[key] = _Seen(before.not_after, before.last_success, False)
            self._seen = seen

    def collect(self) -> Iterator[GaugeMetricFamily]:
        not_after = GaugeMetricFamily(
            "certrenew_certificate_not_after_seconds",
            "notAfter of the certificate last read at the target, as Unix time.",
            labels=TARGET_LABELS,
        )
        last = GaugeMetricFamily(
            "certrenew_certificate_last_probe_success_timestamp_seconds",
            "When the target's certificate was last read successfully, as Unix time.",
            labels=TARGET_LABELS,
        )
        success = GaugeMetricFamily(
            "certrenew_certificate_probe_success",
            "1 if the last read of the target's certificate worked, else 0.",
            labels=TARGET_LABELS,
        )
        with self._lock:
            for key, seen in sorted(self._seen.items()):
                labels = list(key)
                if seen.not_after is not None:
                    not_after.add_metric(labels, seen.not_after)
                if seen.last_success is not None:
                    last.add_metric(labels, seen.last_success)
                success.add_metric(labels, 1.0 if seen.success else 0.0)
        yield from (not_after, last, success)


def renewal_step(state: State | None) -> str:
    """Where an unfinished renewal run stands: the question it waits on, or its state."""
    if state is None:
        return "unknown"
    key = state.state_details.pause_key if state.is_paused() else None
    if key:
        try:
            return question_of(key).value
        except ValueError:
            return "paused"
    return state.type.value.lower()


class OpenRenewals(Collector):
    """Unfinished renewal runs by step, read from the Prefect API at each scrape."""

    def __init__(self, read_runs: Callable[[], Iterable[FlowRun]]) -> None:
        self.read_runs = read_runs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "certrenew_prefect_api_up", "1 if the Prefect API answered this scrape, else 0."
        )
        try:
            steps = Tally(renewal_step(run.state) for run in self.read_runs())
        except Exception as exc:
            log.warning("renewals open: the Prefect API did not answer: %s", exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        open_runs = GaugeMetricFamily(
            "certrenew_renewals_open",
            "Unfinished renewal runs, by the step they are at.",
            labels=["step"],
        )
        for step, number in sorted(steps.items()):
            open_runs.add_metric([step], float(number))
        yield from (up, open_runs)


class Metrics:
    """Every certrenew metric of one serving process, in a registry of its own."""

    def __init__(self, read_runs: Callable[[], Iterable[FlowRun]]) -> None:
        self.registry = CollectorRegistry()
        self.probes = CertificateProbes()
        self.registry.register(self.probes)
        self.registry.register(OpenRenewals(read_runs))
        self.alerts = Counter(
            "certrenew_alerts_received",
            "Alerts received, by what was done with them (one per alert and certificate).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.alerts.labels(outcome)
        self.refused = Counter(
            "certrenew_alert_requests_refused",
            "Alert requests refused before any alert was read, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("unauthorized", "too_large", "malformed"):
            self.refused.labels(reason)

    def count_alert(self, outcome: str) -> None:
        self.alerts.labels(outcome).inc()

    def count_refusal(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    def scrape(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def probe_inventory(settings: Settings, probes: CertificateProbes) -> None:
    """Read every inventory target once and record what was seen."""
    inventory = load_inventory(settings.inventory)
    scan = settings.scan
    results = run_scan(inventory, concurrency=scan.concurrency, timeout=scan.timeout_seconds)
    probes.record(results, time.time())


def start_probing(settings: Settings, probes: CertificateProbes) -> threading.Thread:
    """Read the inventory now and every `probe_interval_seconds`, in a thread, for good."""

    def loop() -> None:
        while True:
            try:
                probe_inventory(settings, probes)
            except Exception as exc:
                log.warning("the certificates could not be read for the metrics: %s", exc)
            time.sleep(settings.intake.probe_interval_seconds)

    thread = threading.Thread(target=loop, name="certrenew-probes", daemon=True)
    thread.start()
    return thread
