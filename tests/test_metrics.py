"""The metrics' contents, read back with prometheus_client's own text parser (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect.states import Paused, Running, Scheduled
from prometheus_client.parser import text_string_to_metric_families

from certrenew.deployments.metrics import Metrics, renewal_step
from certrenew.probe import ProbeResult


def result(target: str, not_after: str | None, error: str | None = None) -> ProbeResult:
    return ProbeResult(
        name="seu",
        domain="seu.example.cat",
        target=target,
        kind="endpoint",
        not_after=not_after,
        days_left=None if not_after is None else 10,
        status="error" if error else "warning",
        subject_cn="seu.example.cat",
        sans=["seu.example.cat"],
        issuer="CN=test",
        serial=None if error else "0A",
        sha256=None,
        covers_domain=True,
        error=error,
    )


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.scrape()[0].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(target: str) -> tuple[tuple[str, str], ...]:
    return (("domain", "seu.example.cat"), ("name", "seu"), ("target", target))


def test_a_failed_read_keeps_the_last_expiry_and_success_time() -> None:
    metrics = Metrics(read_runs=list)
    expiry = "2027-01-31T12:00:00+00:00"
    metrics.probes.record([result("a:443", expiry), result("b:443", expiry)], at=1000.0)
    metrics.probes.record([result("a:443", None, error="timed out")], at=2000.0)
    seen = samples(metrics)
    not_after = datetime(2027, 1, 31, 12, tzinfo=UTC).timestamp()
    assert seen[("certrenew_certificate_not_after_seconds", labels("a:443"))] == not_after
    last = "certrenew_certificate_last_probe_success_timestamp_seconds"
    assert seen[(last, labels("a:443"))] == 1000.0
    assert seen[("certrenew_certificate_probe_success", labels("a:443"))] == 0.0
    # b:443 left the inventory: it is no longer reported.
    assert not [key for key in seen if ("target", "b:443") in key[1]]


def test_open_renewals_by_step_and_alerts_by_outcome() -> None:
    class Run:
        def __init__(self, state: object) -> None:
            self.state = state

    runs = [
        Run(Paused(pause_key="csr-2")),
        Run(Paused(pause_key="csr-1")),
        Run(Paused(pause_key="wait-archive-artifacts-1")),
        Run(Running()),
        Run(Scheduled()),
    ]
    metrics = Metrics(read_runs=lambda: runs)  # type: ignore[arg-type,return-value]
    metrics.count_alert("started")
    metrics.count_alert("resolved")
    metrics.count_alert("resolved")
    metrics.count_refusal("unauthorized")
    seen = samples(metrics)
    assert {k[1][0][1]: v for k, v in seen.items() if k[0] == "certrenew_renewals_open"} == {
        "csr": 2.0,
        "wait": 1.0,
        "running": 1.0,
        "scheduled": 1.0,
    }
    assert seen[("certrenew_prefect_api_up", ())] == 1.0
    received = "certrenew_alerts_received_total"
    assert seen[(received, (("outcome", "resolved"),))] == 2.0
    assert seen[(received, (("outcome", "started"),))] == 1.0
    assert seen[(received, (("outcome", "unknown"),))] == 0.0
    assert seen[("certrenew_alert_requests_refused_total", (("reason", "unauthorized"),))] == 1.0


def test_without_the_prefect_api_the_scrape_still_answers() -> None:
    def unreachable() -> list[object]:
        raise ConnectionError("refused")

    seen = samples(Metrics(read_runs=unreachable))  # type: ignore[arg-type]
    assert seen[("certrenew_prefect_api_up", ())] == 0.0
    assert not [key for key in seen if key[0] == "certrenew_renewals_open"]


def test_a_paused_run_with_a_foreign_key_and_no_state() -> None:
    assert renewal_step(Paused(pause_key="something-else")) == "paused"
    assert renewal_step(None) == "unknown"
