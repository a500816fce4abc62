"""Runbook step 0 as a flow: confirm every certificate's expiry and announce the ones due.

Each certificate that crossed its warning threshold gets exactly one
`certificate.expiring` event per run, which is what starts its renewal. A
certificate already renewed on some live endpoint is not announced: the
newest certificate seen decides (see certrenew.renewal_need).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.utilities.annotations import quote

from certrenew.adapters.wiring import build_notice_channels, build_tracker
from certrenew.config import Settings, load_settings
from certrenew.errors import ConfigError
from certrenew.inventory import Inventory, Shard, load_inventory
from certrenew.probe import ProbeResult
from certrenew.renewal_need import (
    RenewalDecision,
    detection_summary,
    expiry_notes,
    expiry_table,
    renewal_decisions,
)
from certrenew.tasks.notices import retry_pending_notices
from certrenew.tasks.reminders import send_reminders
from certrenew.tasks.tls import scan_certificates

EXPIRY_ARTIFACT_KEY = "certificate-expiry"
EXPIRING_EVENT = "certificate.expiring"
RESOURCE_PREFIX = "certrenew.certificate."

T = TypeVar("T")


def unwalked(value: T) -> T:
    """`value`, marked so Prefect passes it to the task without walking it.

    Prefect visits every task argument item by item and field by field, looking
    for futures to wait on; with 10,000 results, decisions and inventory entries
    that walk took longer than the scan itself.
    """
    return cast(T, quote(value))


@task(name="publish-expiry-table", cache_policy=NO_CACHE)
def publish_expiry_table(
    results: list[ProbeResult], decisions: list[RenewalDecision], key: str = EXPIRY_ARTIFACT_KEY
) -> None:
    create_table_artifact(
        table=expiry_table(results, decisions),
        key=key,
        description=expiry_notes(decisions),
    )


@task(name="announce-expiring-certificates", cache_policy=NO_CACHE)
def announce_expiring(decisions: list[RenewalDecision]) -> list[str]:
    """One event per certificate due for renewal; returns the names whose event was sent."""
    announced = []
    for decision in decisions:
        if not decision.needs_renewal:
            continue
        sent = emit_event(
            event=EXPIRING_EVENT,
            resource={
                "prefect.resource.id": RESOURCE_PREFIX + decision.name,
                "prefect.resource.name": decision.name,
            },
            payload=decision.event_payload(),
        )
        if sent is None:
            get_run_logger().warning(
                "could not send %s for %s: events are off or no Prefect API is reachable",
                EXPIRING_EVENT,
                decision.name,
            )
            continue
        announced.append(decision.name)
    return announced


@task(name="deliver-pending-notices", cache_policy=NO_CACHE)
def deliver_pending_notices(settings: Settings) -> list[str]:
    """Notices a transport did not take on an earlier run, tried again; what still fails."""
    return retry_pending_notices(build_notice_channels(settings))


@task(name="send-expiry-reminders", cache_policy=NO_CACHE)
def send_expiry_reminders(
    decisions: list[RenewalDecision], inventory: Inventory, settings: Settings
) -> list[str]:
    """The runbook's reminders, each saying where the renewal stands; escalations when due.

    One reminder per certificate, serial and threshold crossed, so daily runs
    send each once (see certrenew.reminders). Returns what did not go out.
    """
    return send_reminders(
        decisions,
        inventory,
        settings.notices,
        build_notice_channels(settings),
        build_tracker(settings),
        now=datetime.now(UTC),
        ui_url=settings.renewal.flow_ui_url if settings.renewal else None,
    )


@flow(name="detect-expiring-certificates")
def detect_expiring_certificates(
    inventory_path: str | None = None, config_path: str | None = None, shard: str | None = None
) -> dict[str, Any]:
    """Scan the inventory, publish the expiry table, announce what needs renewal.

    `shard` ("i/n") scans only that part of the inventory, so an inventory
    larger than one run can probe in its window is split across runs (one
    deployment per part, or parallel runs); each part publishes its own table.
    """
    settings = load_settings(Path(config_path) if config_path else None)
    inventory = load_inventory(Path(inventory_path) if inventory_path else settings.inventory)
    table_key = EXPIRY_ARTIFACT_KEY
    if shard is not None:
        try:
            part = Shard.parse(shard)
        except ValueError as exc:
            raise ConfigError(f"the detection's shard parameter: {exc}") from None
        inventory = part.of(inventory)
        table_key = f"{EXPIRY_ARTIFACT_KEY}-part-{part.index}-of-{part.count}"
    results = scan_certificates(
        unwalked(inventory), settings.scan.concurrency, settings.scan.timeout_seconds
    )
    decisions = renewal_decisions(results, inventory)
    publish_expiry_table(unwalked(results), unwalked(decisions), table_key)
    announced = announce_expiring(unwalked(decisions))
    undelivered = deliver_pending_notices(settings)
    undelivered += send_expiry_reminders(unwalked(decisions), unwalked(inventory), settings)
    summary = {**detection_summary(results, decisions), "notices_not_delivered": undelivered}
    get_run_logger().info(
        "%d targets scanned, %d certificates need renewal: %s",
        summary["targets"],
        len(announced),
        ", ".join(announced) or "none",
    )
    return summary


if __name__ == "__main__":
    detect_expiring_certificates()
