"""`certrenew serve`'s HTTP port for real: alerts posted over HTTP, metrics scraped over HTTP.

The serving process is the real one (`python -m certrenew.deployments.serve`,
started by the renewal lab on a real Prefect API); requests go through httpx
to its loopback port, and the metrics are read with prometheus_client's own
text parser.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from certrenew.inventory import load_inventory
from certrenew.probe import run_scan
from tests.fixtures_renewal import RenewalLab
from tests.test_alerts import blackbox_alert, webhook
from tests.test_one_renewal import renewal_runs

pytestmark = pytest.mark.prefect


def post(lab: RenewalLab, body: Any, token: str | None = "", **headers: str) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    token = lab.intake_token if token == "" else token
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{lab.intake_url}/alerts", content=data, headers=headers, timeout=60)


def scrape(lab: RenewalLab) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{lab.intake_url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_refused_requests_say_what_is_wrong_and_never_echo_the_token(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    lab.serve_certificate("refusals")
    answers = {
        "missing": post(lab, {"name": "refusals"}, token=None),
        "wrong": post(lab, {"name": "refusals"}, token="not-the-token"),
        "basic": post(lab, {"name": "refusals"}, token=None, Authorization="Basic eDp5"),
        "large": post(lab, b'{"name": "' + b"x" * (1024 * 1024) + b'"}'),
        "malformed": post(lab, b'{"name": "refusals",'),
        "shapeless": post(lab, {"certificate": "refusals"}),
        "unknown": post(lab, {"name": "nobody-has-this"}),
    }
    status = {kind: answer.status_code for kind, answer in answers.items()}
    assert status == {
        "missing": 401,
        "wrong": 401,
        "basic": 401,
        "large": 413,
        "malformed": 400,
        "shapeless": 400,
        "unknown": 422,
    }
    assert answers["missing"].headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in answers["missing"].json()["error"]
    assert "wrong bearer token" in answers["wrong"].json()["error"]
    assert "at most 1048576" in answers["large"].json()["error"]
    assert "not JSON" in answers["malformed"].json()["error"]
    assert "unknown field(s) certificate" in answers["shapeless"].json()["error"]
    [unknown] = answers["unknown"].json()["alerts"]
    assert unknown["outcome"] == "unknown"
    assert "nobody-has-this" in unknown["note"]
    for answer in answers.values():
        assert lab.intake_token not in answer.text
    # Nothing was started for any of them, and the process still answers.
    assert renewal_runs("refusals") == []
    assert httpx.get(f"{lab.intake_url}/healthz", timeout=10).text == "ok\n"


def test_an_alertmanager_alert_starts_the_renewal_once_and_the_rest_is_recorded(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    domain, server = lab.serve_certificate("alerted")
    lab.serve_certificate("alerted-fresh", days=200)
    port = server.address.rsplit(":", 1)[1]

    first = post(lab, webhook(blackbox_alert(f"https://{domain}:{port}/")))
    assert first.status_code == 200, first.text
    [started] = first.json()["alerts"]
    assert started["outcome"] == "started", started
    assert started["certificate"] == "alerted"
    [run] = renewal_runs("alerted")
    assert str(run.id) in started["run_url"]

    # The same alert again, a plain one, and a resolved one: recorded, not acted on.
    again = post(lab, webhook(blackbox_alert(f"{domain}:{port}")))
    plain = post(lab, {"domain": domain, "source": "nagios"})
    resolved = post(lab, webhook(blackbox_alert(f"{domain}:{port}", status="resolved")))
    fresh = post(lab, {"name": "alerted-fresh"})
    outcomes = [answer.json()["alerts"][0] for answer in (again, plain, resolved, fresh)]
    assert [o["outcome"] for o in outcomes] == [
        "already_renewing",
        "already_renewing",
        "resolved",
        "not_due",
    ], outcomes
    assert "200 days left" in outcomes[3]["note"] or "199 days left" in outcomes[3]["note"]
    assert len(renewal_runs("alerted")) == 1
    assert renewal_runs("alerted-fresh") == []

    # Every alert was logged with what was done with it.
    log = (lab.home / "serve.log").read_text(errors="replace")
    assert f"on https://{domain}:{port}/ (firing): alerted: renewal started" in log
    assert "(resolved): alerted: resolved: recorded, not acted on" in log
    assert "nagios: alert on " in log

    # The metrics: the certificate's expiry as read live, the alerts by outcome, the run.
    inventory = load_inventory(lab.inventory)
    single = inventory.model_copy(update={"certificates": [inventory.get("alerted")]})
    (probe,) = run_scan(single, concurrency=1, timeout=5)
    assert probe.not_after_datetime
    labels = (("domain", domain), ("name", "alerted"), ("target", server.address))
    deadline = time.monotonic() + 60
    seen = scrape(lab)
    while ("certrenew_certificate_not_after_seconds", labels) not in seen:
        assert time.monotonic() < deadline, sorted(seen)
        time.sleep(1)
        seen = scrape(lab)
    assert seen[("certrenew_certificate_not_after_seconds", labels)] == (
        probe.not_after_datetime.timestamp()
    )
    assert seen[("certrenew_certificate_probe_success", labels)] == 1.0
    last = seen[("certrenew_certificate_last_probe_success_timestamp_seconds", labels)]
    assert abs(last - time.time()) < 3600
    received = "certrenew_alerts_received_total"
    assert seen[(received, (("outcome", "started"),))] >= 1
    assert seen[(received, (("outcome", "already_renewing"),))] >= 2
    assert seen[(received, (("outcome", "resolved"),))] >= 1
    assert seen[(received, (("outcome", "not_due"),))] >= 1
    assert seen[("certrenew_prefect_api_up", ())] == 1.0
    open_by_step = {k[1][0][1]: v for k, v in seen.items() if k[0] == "certrenew_renewals_open"}
    assert sum(open_by_step.values()) >= 1, open_by_step
