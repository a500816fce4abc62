"""The guard's names: what Prefect accepts, and what reads back (no server)."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

from prefect.client.schemas.actions import VariableCreate

from certrenew.triggers import (
    Trigger,
    also_triggered_step,
    claims_of,
    renewal_key,
    trigger_claim,
)


def test_a_claim_is_a_name_prefect_accepts_and_starts_with_its_runs_prefix() -> None:
    run = str(uuid4())
    claim = trigger_claim(run, date(2026, 12, 3))
    VariableCreate(name=claim, value={"state": "claimed"})  # Prefect's own name rules
    assert claim.startswith(claims_of(run))
    assert claim.endswith("-20261203")
    assert not trigger_claim(str(uuid4()), date(2026, 12, 3)).startswith(claims_of(run))


def test_keys_and_steps_name_the_certificate_and_the_day() -> None:
    assert renewal_key("seu", None) != renewal_key("seu", "abc")
    assert renewal_key("seu", "abc") != renewal_key("seu2", "abc")
    assert also_triggered_step(date(2026, 1, 2)) == "also-triggered-2026-01-02"


def test_a_trigger_reads_back_from_a_stored_value() -> None:
    asked = Trigger("alert", "Alertmanager: CertificateExpiringSoon on seu:443")
    assert Trigger.from_dict(asked.as_dict()) == asked
    odd = Trigger.from_dict({"kind": "carrier pigeon", "source": "x"})
    assert odd.kind == "run" and odd.source == "x"
