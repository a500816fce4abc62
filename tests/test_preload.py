"""Runs start as forks of a preloaded process: the flow reaches the fork by name."""

from __future__ import annotations

import pickle

import cloudpickle  # type: ignore[import-untyped]
from prefect import flow

from certrenew.deployments.preload import by_name
from certrenew.flows.detect_expiring import detect_expiring_certificates
from certrenew.flows.renew_certificate import renew_certificate


def test_the_served_flows_reach_the_run_as_the_objects_its_imports_made() -> None:
    for served in (renew_certificate, detect_expiring_certificates):
        payload = cloudpickle.dumps(by_name(served))
        assert pickle.loads(payload) is served
        assert len(payload) < 1000  # a name, not the function and its steps by value


def test_a_flow_its_module_does_not_name_is_pickled_as_it_is() -> None:
    @flow(name="made-here")
    def made_here() -> int:
        return 1

    assert by_name(made_here) is made_here
    assert pickle.loads(cloudpickle.dumps(by_name(made_here))).fn() == 1
