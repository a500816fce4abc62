"""Runbook steps that look at the live certificate: step 0 (confirm) and step 7 (verify)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect.runtime import flow_run

from certrenew.adapters.wiring import RenewalContext
from certrenew.errors import NothingServed
from certrenew.inventory import CertificateEntry, Inventory, load_inventory
from certrenew.probe import ProbeResult, run_scan
from certrenew.renewal import RenewalStart, ServedCertificate, Verification, renewal_id
from certrenew.renewal_need import renewal_decisions
from certrenew.tasks.context import renewal_step, say


def probe_entry(
    ctx: RenewalContext, inventory: Inventory, entry: CertificateEntry
) -> list[ProbeResult]:
    scan = ctx.scan
    single = Inventory(defaults=inventory.defaults, certificates=[entry])
    return run_scan(single, concurrency=scan.concurrency, timeout=scan.timeout_seconds)


def confirm(ctx: RenewalContext, name: str, force: bool) -> RenewalStart:
    """Which certificate is being replaced; `already_renewed` when a fresh one is served.

    The same rule as detection decides (certrenew.renewal_need): the newest
    certificate among the entry's endpoints and files.
    """
    inventory = load_inventory(ctx.inventory)
    entry = inventory.get(name)
    (decision,) = renewal_decisions(probe_entry(ctx, inventory, entry), inventory)
    newest = decision.newest
    if newest is None or not (newest.serial and newest.not_after_datetime and newest.sha256):
        errors = "; ".join(f"{r.target}: {r.error}" for r in decision.unchecked)
        raise NothingServed(
            f"no endpoint or file of {entry.name} could be read ({errors}): fix the inventory "
            "or the endpoint, then resume"
        )
    days_left = newest.days_left or 0
    fresh = not decision.needs_renewal and not force
    note = ""
    if fresh:
        note = (
            f"{newest.target} already serves serial {newest.serial}, valid for {days_left} more "
            "days: nothing to renew"
        )
        if decision.stale:
            note += "; still serving an older certificate: " + ", ".join(
                r.target for r in decision.stale
            )
    return RenewalStart(
        id=renewal_id(entry.domain, newest.serial),
        name=entry.name,
        domain=entry.domain,
        owner=entry.owner,
        current_ca=entry.ca,
        old=ServedCertificate(
            serial=newest.serial,
            not_after=newest.not_after_datetime,
            sha256=newest.sha256,
            subject_cn=newest.subject_cn,
            days_left=days_left,
            sans=tuple(newest.sans or ()),  # unknown when unreadable: none to reorder
        ),
        endpoints=tuple(e.target for e in entry.endpoints),
        files=tuple(str(f.path) for f in entry.files),
        already_renewed=fresh,
        note=note,
        certificate_kind=entry.certificate_kind,
    )


def confirm_key(run_id: str | None, name: object) -> str:
    """Step 0 is kept per run: another run may find another certificate served."""
    return f"{run_id}.confirm-expiry.{name}"


def _per_run_key(_: object, parameters: dict[str, object]) -> str:
    return confirm_key(flow_run.get_id(), parameters["name"])


@renewal_step("confirm-expiry", key=_per_run_key)
def confirm_expiry(ctx: RenewalContext, name: str, force: bool = False) -> RenewalStart:
    """Step 0, once per flow run: the renewal's identity comes from what was served then."""
    start = confirm(ctx, name, force)
    old = start.old
    say(
        f"stopping: {start.note}"
        if start.already_renewed
        else f"{start.domain} serves serial {old.serial}, expiring {old.not_after:%Y-%m-%d} "
        f"({old.days_left} days left): renewing it"
    )
    return start


def serving_new(ctx: RenewalContext, start: RenewalStart, new_serial: str) -> Verification:
    inventory = load_inventory(ctx.inventory)
    results = probe_entry(ctx, inventory, inventory.get(start.name))
    served = tuple(r.target for r in results if r.serial == new_serial)
    return Verification(
        verified=len(served) == len(results),
        served_new=served,
        still_old=tuple(
            f"{r.target} ({'serial ' + r.serial if r.serial else r.error})"
            for r in results
            if r.serial != new_serial
        ),
    )


@renewal_step("verify-served-certificate")
def verify_served_certificate(
    ctx: RenewalContext, start: RenewalStart, new_serial: str, attempt: int
) -> Verification:
    """Step 7: poll every endpoint and file with growing pauses until all show the new serial."""
    renewal = ctx.renewal
    deadline = time.monotonic() + renewal.verify_poll_minutes * 60
    delay = renewal.verify_poll_seconds
    while True:
        verification = serving_new(ctx, start, new_serial)
        if verification.verified or time.monotonic() + delay > deadline:
            say(
                f"every endpoint serves serial {new_serial}"
                if verification.verified
                else "still not serving the new certificate: " + "; ".join(verification.still_old)
            )
            return verification
        time.sleep(delay)
        delay = min(delay * 2, 600)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
