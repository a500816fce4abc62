"""Step 0's decision: which certificates need a renewal, judged per certificate, not per target.

One inventory entry may be served by several endpoints and kept in several
files. During a roll-out they disagree: some already serve the renewed
certificate, others still the old one. The newest certificate seen decides,
so a certificate is never sent for renewal when a live endpoint already
serves a newer one; the targets left behind are reported as stale instead.
A target that could not be checked says nothing about expiry, so errors
alone never ask for a renewal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from certrenew.inventory import Inventory
from certrenew.probe import ProbeResult, Status, expiry_status, sort_key

NEEDS_RENEWAL: frozenset[Status] = frozenset({"warning", "critical", "expired"})


@dataclass(frozen=True)
class RenewalDecision:
    name: str
    domain: str
    status: Status  # expiry of the newest certificate seen; "error" when none could be read
    newest: ProbeResult | None
    stale: tuple[ProbeResult, ...]
    unchecked: tuple[ProbeResult, ...]

    @property
    def needs_renewal(self) -> bool:
        return self.status in NEEDS_RENEWAL

    def event_payload(self) -> dict[str, Any]:
        """What the renewal flow needs to start: no secrets, only public certificate facts."""
        newest = self.newest
        assert newest is not None, "only a certificate that was read can need renewal"
        return {
            "name": self.name,
            "domain": self.domain,
            "days_left": newest.days_left,
            "not_after": newest.not_after,
            "serial": newest.serial,
            "status": self.status,
        }


def _newest(readable: list[ProbeResult]) -> ProbeResult | None:
    """The latest-expiring certificate, preferring those valid for the domain.

    A misconfigured endpoint serving some unrelated certificate must not hide
    that the domain's own certificate is about to expire.
    """
    covering = [r for r in readable if r.covers_domain] or readable
    return max(covering, key=lambda r: r.not_after or "", default=None)


def renewal_decisions(
    results: Iterable[ProbeResult], inventory: Inventory
) -> list[RenewalDecision]:
    """One decision per certificate that has results, in inventory order."""
    by_name: dict[str, list[ProbeResult]] = {}
    for result in results:
        by_name.setdefault(result.name, []).append(result)
    decisions = []
    for entry in inventory.certificates:
        seen = by_name.get(entry.name)
        if not seen:
            continue
        readable = [r for r in seen if r.not_after is not None]
        newest = _newest(readable)
        if newest is None or newest.days_left is None:
            status: Status = "error"
            stale: tuple[ProbeResult, ...] = ()
        else:
            status = expiry_status(newest.days_left, entry.thresholds(inventory.defaults))
            stale = tuple(
                sorted(
                    (r for r in readable if (r.not_after or "") < (newest.not_after or "")),
                    key=sort_key,
                )
            )
        decisions.append(
            RenewalDecision(
                name=entry.name,
                domain=entry.domain,
                status=status,
                newest=newest,
                stale=stale,
                unchecked=tuple(r for r in seen if r.not_after is None),
            )
        )
    return decisions


def expiry_table(
    results: Iterable[ProbeResult], decisions: Iterable[RenewalDecision]
) -> list[dict[str, Any]]:
    """Rows for the run's table artifact, soonest expiry first."""
    verdict = {d.name: d for d in decisions}
    rows = []
    for r in sorted(results, key=sort_key):
        decision = verdict.get(r.name)
        if decision is not None and r in decision.stale:
            renewal = "no: stale target, a newer certificate is served elsewhere"
        elif decision is not None and decision.needs_renewal:
            renewal = "needed"
        elif r.status == "error":
            renewal = "unknown: target not checked"
        else:
            renewal = "no"
        rows.append(
            {
                "status": r.status,
                "days_left": r.days_left,
                "not_after": r.not_after,
                "name": r.name,
                "domain": r.domain,
                "target": r.target,
                "kind": r.kind,
                "serial": r.serial,
                "covers_domain": r.covers_domain,
                "renewal": renewal,
                "error": r.error,
                "note": r.note,
            }
        )
    return rows


def expiry_notes(decisions: list[RenewalDecision]) -> str:
    """Markdown beside the table: what needs renewal, what is stale, what was not checked."""
    needed = [d for d in decisions if d.needs_renewal]
    lines = [f"**{len(needed)} of {len(decisions)} certificates need renewal.**", ""]
    for d in needed:
        n = d.newest
        assert n is not None
        lines.append(f"- `{d.name}` ({d.domain}): {d.status}, {n.days_left} days left")
    stale = [(d, r) for d in decisions for r in d.stale]
    if stale:
        lines += ["", "**Stale targets** (a newer certificate is already served elsewhere):", ""]
        for d, r in stale:
            newest = d.newest
            assert newest is not None
            lines.append(
                f"- `{d.name}` at {r.target} still shows serial {r.serial} "
                f"(expires {r.not_after}); newest is {newest.serial} at {newest.target}"
            )
    unchecked = [r for d in decisions for r in d.unchecked]
    if unchecked:
        lines += ["", "**Not checked:**", ""]
        lines += [f"- `{r.name}` at {r.target}: {r.error}" for r in unchecked]
    return "\n".join(lines)


def detection_summary(
    results: list[ProbeResult], decisions: list[RenewalDecision]
) -> dict[str, Any]:
    """What the detection run returns: counts and names, never certificate contents or secrets."""
    return {
        "targets": len(results),
        "statuses": dict(Counter(r.status for r in results)),
        "certificates": len(decisions),
        "needs_renewal": [d.name for d in decisions if d.needs_renewal],
        "stale_targets": [
            {"name": d.name, "target": r.target, "serial": r.serial}
            for d in decisions
            for r in d.stale
        ],
        "not_checked": [
            {"name": r.name, "target": r.target} for d in decisions for r in d.unchecked
        ],
    }
