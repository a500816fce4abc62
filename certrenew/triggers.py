"""What asks for a renewal, and the names that keep one renewal per certificate.

Detection's events, monitors' alerts and `certrenew renew` all ask for the
same thing: renew this certificate. The guard (certrenew.tasks.guard) turns
the first ask into a renewal run and every later one, while that run is open,
into a note on its ticket. The names below are how the guard and the flow
find each other's records again, so they are kept in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Literal
from uuid import uuid4

TriggerKind = Literal["event", "alert", "command", "run"]

# The flow run's context key holding the trigger that created it: the guard
# reads it back to tell the run it created from one another trigger created.
TRIGGER_CONTEXT = "certrenew.trigger"

# Claims of "a second trigger was recorded today" live in Prefect variables
# named `<prefix><run id hex>-<yyyymmdd>`: creating one is atomic on the server.
CLAIM_PREFIX = "certrenew-also-"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Trigger:
    """One request to renew a certificate: what sent it, in words for the ticket and the log."""

    kind: TriggerKind
    source: str
    at: str = field(default_factory=_now)
    id: str = field(default_factory=lambda: uuid4().hex)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Trigger:
        kind = data.get("kind", "run")
        return cls(
            kind=kind if kind in ("event", "alert", "command", "run") else "run",  # type: ignore[arg-type]
            source=str(data.get("source", "")),
            at=str(data.get("at", "")),
            id=str(data.get("id", "")),
        )


def certificate_tag(name: str) -> str:
    """The tag every renewal run of the inventory certificate `name` carries."""
    return f"certrenew.certificate:{name}"


def renewal_key(name: str, after_run: str | None) -> str:
    """The idempotency key of the next renewal run of `name`.

    It names the certificate's latest finished run, so every trigger that sees
    the same history asks for the same run, and the server creates it once.
    """
    return f"certrenew renewal of {name} after {after_run or 'none'}"


def also_triggered_step(day: date) -> str:
    """The comment step of a day's "also asked for" note: one per renewal and day."""
    return f"also-triggered-{day:%Y-%m-%d}"


def trigger_claim(run_id: str, day: date) -> str:
    """The Prefect variable that says a day's note on run `run_id` is taken care of."""
    return f"{CLAIM_PREFIX}{run_id.replace('-', '')}-{day:%Y%m%d}"


def claims_of(run_id: str) -> str:
    """The common start of every claim of run `run_id`."""
    return f"{CLAIM_PREFIX}{run_id.replace('-', '')}-"
