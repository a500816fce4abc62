"""Runbook step 0 as a flow: the renewal rule alone, then the flow against a real Prefect API."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from certrenew.inventory import Inventory, parse_inventory
from certrenew.lab.tls import TLSServer
from certrenew.probe import ProbeResult
from certrenew.renewal_need import expiry_notes, expiry_table, renewal_decisions
from tests.fixtures_tls import ScanLab

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def seen(name: str, target: str, days_left: int | None, *, covers: bool = True) -> ProbeResult:
    """A result as the probe reports it (only the fields the rule reads vary)."""
    if days_left is None:
        return ProbeResult(
            name, f"{name}.lab.test", target, "endpoint", None, None, "error",
            None, [], None, None, None, None, "connection refused at " + target,
        )  # fmt: skip
    not_after = (NOW + timedelta(days=days_left, hours=1)).isoformat()
    return ProbeResult(
        name, f"{name}.lab.test", target, "endpoint", not_after, days_left, "ok",
        name, [f"{name}.lab.test"], "CN=CA", f"{days_left:04X}", "ab" * 32, covers, None,
    )  # fmt: skip


def inventory_of(*names: str, **extra: Any) -> Inventory:
    entries: list[dict[str, Any]] = [
        {"name": n, "domain": f"{n}.lab.test", "endpoints": ["127.0.0.1:1"]} for n in names
    ]
    for entry in entries:
        entry.update(extra.get(entry["name"], {}))
    return parse_inventory(yaml.safe_dump({"certificates": entries}))


def test_a_newer_certificate_served_elsewhere_cancels_the_renewal() -> None:
    old, new = seen("seu", "a:443", 3), seen("seu", "b:443", 396)
    (decision,) = renewal_decisions([old, new], inventory_of("seu"))
    assert not decision.needs_renewal
    assert decision.status == "ok"
    assert decision.newest == new
    assert decision.stale == (old,)
    assert "still shows serial 0003" in expiry_notes([decision])


def test_the_newest_certificate_decides_when_every_target_is_due() -> None:
    (decision,) = renewal_decisions(
        [seen("api", "a:443", 20), seen("api", "b:443", 5)], inventory_of("api")
    )
    assert decision.needs_renewal and decision.status == "warning"
    assert decision.event_payload() == {
        "name": "api",
        "domain": "api.lab.test",
        "days_left": 20,
        # A decision that needs renewal has read a certificate, so `newest` is set.
        "not_after": decision.newest.not_after,  # type: ignore[union-attr]
        "serial": "0014",
        "status": "warning",
    }


def test_a_failing_endpoint_alone_never_asks_for_renewal() -> None:
    down = seen("down", "a:443", None)
    (decision,) = renewal_decisions([down], inventory_of("down"))
    assert decision.status == "error" and not decision.needs_renewal
    assert decision.unchecked == (down,)
    (mixed,) = renewal_decisions([down, seen("down", "b:443", 2)], inventory_of("down"))
    assert mixed.status == "critical" and mixed.unchecked == (down,)


def test_an_unrelated_certificate_does_not_hide_an_expiring_one() -> None:
    unrelated = seen("web", "default-vhost:443", 700, covers=False)
    (decision,) = renewal_decisions([unrelated, seen("web", "a:443", 4)], inventory_of("web"))
    assert decision.needs_renewal and decision.status == "critical"


def test_per_certificate_thresholds_decide() -> None:
    inventory = inventory_of("early", "late", early={"warn_days": 45})
    decisions = renewal_decisions([seen("early", "a", 40), seen("late", "b", 40)], inventory)
    assert [(d.name, d.needs_renewal) for d in decisions] == [("early", True), ("late", False)]


def test_the_table_marks_stale_targets_and_lists_soonest_first() -> None:
    results = [seen("seu", "a:443", 3), seen("seu", "b:443", 396), seen("x", "c:443", 25)]
    rows = expiry_table(results, renewal_decisions(results, inventory_of("seu", "x")))
    assert [(r["target"], r["renewal"].split(":")[0]) for r in rows] == [
        ("a:443", "no"),
        ("c:443", "needed"),
        ("b:443", "no"),
    ]
    assert "stale" in rows[0]["renewal"]


# The flow, against a real Prefect API ------------------------------------------------


def flow_inventory(lab: ScanLab, folder: Path, renewed_at: str) -> Path:
    """`renewed`: its old certificate on one endpoint, the renewed one live on another."""
    case = lab.cases
    endpoint = {n: case[n].endpoint for n in ("soon3", "far", "soon20", "refused")}
    entries: list[dict[str, Any]] = [
        {
            "name": "renewed",
            "domain": "soon3.lab.test",
            "endpoints": [endpoint["soon3"], renewed_at],
        },
        {"name": "due", "domain": "soon20.lab.test", "endpoints": [endpoint["soon20"]]},
        {"name": "lapsed", "domain": "file-der.lab.test", "files": [case["file-der"].file]},
        {"name": "seal", "domain": "file-p12.lab.test", "files": [case["file-p12"].file]},
        {"name": "healthy", "domain": "far.lab.test", "endpoints": [endpoint["far"]]},
        {"name": "down", "domain": "down.lab.test", "endpoints": [endpoint["refused"]]},
    ]
    # The lapsed file: warning threshold above its 25 days.
    entries[2]["warn_days"] = 40
    path = folder / "flow-inventory.yaml"
    path.write_text(yaml.safe_dump({"certificates": entries}), encoding="utf-8")
    return path


async def read_back(
    flow_run_id: Any, key: str = "certificate-expiry"
) -> tuple[list[Any], list[Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=["certificate.expiring"]),
                related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            ),
            limit=50,
        )
    return artifacts, page.events


@pytest.mark.prefect
def test_detection_flow_publishes_the_table_and_one_event_per_due_certificate(
    prefect_harness: None,
    scan_lab: ScanLab,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from certrenew.flows.detect_expiring import detect_expiring_certificates

    for name, value in scan_lab.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CERTRENEW_DATA_DIR", str(tmp_path / "data"))
    config = scan_lab.config(timeout=2)
    with TLSServer(scan_lab.ca.issue("soon3.lab.test", days=396.5)) as renewed:
        inventory = flow_inventory(scan_lab, tmp_path, renewed.address)
        state = detect_expiring_certificates(str(inventory), str(config), return_state=True)
    summary = state.result()
    assert summary["targets"] == 7
    assert sorted(summary["needs_renewal"]) == ["due", "lapsed", "seal"]
    (stale,) = summary["stale_targets"]
    old = scan_lab.cases["soon3"]
    assert (stale["name"], stale["target"]) == ("renewed", old.target)
    # Served cases of the scan lab carry their leaf (Case.leaf is None only for the others).
    assert int(stale["serial"], 16) == old.leaf.certificate.serial_number  # type: ignore[union-attr]
    assert summary["not_checked"] == [{"name": "down", "target": scan_lab.cases["refused"].target}]

    # Events reach the database in batches: poll briefly for both.
    deadline = time.monotonic() + 30
    while True:
        artifacts, events = asyncio.run(read_back(state.state_details.flow_run_id))
        if len(events) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    (artifact,) = artifacts
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert [r["name"] for r in rows] == [
        "down", "renewed", "seal", "due", "lapsed", "renewed", "healthy",
    ]  # fmt: skip
    assert rows[1]["renewal"].startswith("no: stale target")
    assert "Stale targets" in artifact.description and "`renewed`" in artifact.description

    by_name = {e.resource.id: e for e in events}
    assert len(events) == 3 == len(by_name)
    due = by_name["certrenew.certificate.due"]
    # A served case, so it carries its leaf.
    soon20 = scan_lab.cases["soon20"].leaf.certificate  # type: ignore[union-attr]
    assert due.payload["days_left"] == 20 and due.payload["status"] == "warning"
    assert int(due.payload["serial"], 16) == soon20.serial_number
    assert datetime.fromisoformat(due.payload["not_after"]) == soon20.not_valid_after_utc
    assert due.payload["domain"] == "soon20.lab.test"
    lapsed = by_name["certrenew.certificate.lapsed"]
    assert lapsed.payload["days_left"] == 25 and lapsed.payload["name"] == "lapsed"
    assert by_name["certrenew.certificate.seal"].payload["status"] == "critical"

    # One expiry reminder per due certificate and threshold, in the outbox.
    outbox = tmp_path / "data" / "outbox"
    reminders = sorted(p.name for p in outbox.iterdir())
    assert len(reminders) == 3
    due_notice = next(p for p in outbox.iterdir() if p.name.startswith("expiry-due-"))
    assert due_notice.name.endswith(f"{due.payload['serial']}-warning.eml")
    message = email.message_from_bytes(due_notice.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Avís de caducitat: due"
    assert "queden 20 dies" in message.get_content()

    published = [
        *(p.read_text(encoding="utf-8") for p in outbox.iterdir()),
        json.dumps(summary),
        str(artifact.data),
        artifact.description or "",
        *(json.dumps(e.payload) for e in events),
        *capfd.readouterr(),
    ]
    assert not [text for text in published if scan_lab.p12_password in text]


def test_detection_in_two_parts_covers_the_inventory_once(
    prefect_harness: None, scan_lab: ScanLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from certrenew.flows.detect_expiring import detect_expiring_certificates

    for name, value in scan_lab.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CERTRENEW_DATA_DIR", str(tmp_path / "data"))
    config = scan_lab.config(timeout=2)
    with TLSServer(scan_lab.ca.issue("soon3.lab.test", days=396.5)) as renewed:
        inventory = flow_inventory(scan_lab, tmp_path, renewed.address)
        states = [
            detect_expiring_certificates(str(inventory), str(config), part, return_state=True)
            for part in ("1/2", "2/2")
        ]
    summaries = [state.result() for state in states]
    assert sum(summary["targets"] for summary in summaries) == 7
    assert all(summary["targets"] for summary in summaries)
    due = sorted(name for summary in summaries for name in summary["needs_renewal"])
    assert due == ["due", "lapsed", "seal"]
    for index, state in enumerate(states, start=1):
        artifacts, _ = asyncio.run(
            read_back(state.state_details.flow_run_id, f"certificate-expiry-part-{index}-of-2")
        )
        (artifact,) = artifacts
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        assert len(rows) == summaries[index - 1]["targets"]
