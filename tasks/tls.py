"""Prefect steps that touch TLS endpoints and certificate files (runbook step 0)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from certrenew.inventory import Inventory
from certrenew.probe import ProbeResult, run_scan


# A scan must always look again: a cached answer would hide a certificate
# installed since, or one that just crossed its threshold.
@task(name="scan-certificates", cache_policy=NO_CACHE)
def scan_certificates(inventory: Inventory, concurrency: int, timeout: float) -> list[ProbeResult]:
    """Every endpoint and file of the inventory, soonest expiry first."""
    return run_scan(inventory, concurrency=concurrency, timeout=timeout)
