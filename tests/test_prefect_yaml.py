"""The worker set-up (`prefect.yaml`) starts renewals only through the guard."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml

from certrenew.flows.admit_renewal import admit_renewal_request
from certrenew.flows.detect_expiring import EXPIRING_EVENT, RESOURCE_PREFIX

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def deployments() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    return {d["name"]: d for d in loaded["deployments"]}


def test_no_trigger_starts_a_renewal_run_directly() -> None:
    assert "triggers" not in deployments()["renew-certificate"]


def test_expiring_events_start_the_guards_flow_with_its_own_parameters() -> None:
    admit = deployments()["admit-renewal"]
    assert admit["entrypoint"] == "certrenew.flows.admit_renewal:admit_renewal_request"
    [trigger] = admit["triggers"]
    assert trigger["expect"] == [EXPIRING_EVENT]
    assert trigger["match"]["prefect.resource.id"] == RESOURCE_PREFIX + "*"
    accepted = set(inspect.signature(admit_renewal_request.fn).parameters)
    assert set(trigger["parameters"]) | set(admit["parameters"]) <= accepted
    assert "name" in trigger["parameters"]
