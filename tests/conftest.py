"""Shared fixtures live in tests/fixtures_*.py modules, registered here."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins: list[str] = [
    "tests.fixtures_tls",
    "tests.fixtures_prefect",
    "tests.fixtures_renewal",
    "tests.fixtures_sharepoint",
    "tests.fixtures_jira",
    "tests.fixtures_cli",
    "tests.fixtures_browser",
    "tests.fixtures_demo",
]

# Property-based tests (marker `fuzz`): a few hundred inputs per parser in every
# run, 10,000 with `make fuzz` (CERTRENEW_HYPOTHESIS_PROFILE=fuzz). No deadline:
# timed assertions do not belong in tests, and the machine is shared.
settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
settings.register_profile(
    "fuzz",
    max_examples=10_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("CERTRENEW_HYPOTHESIS_PROFILE", "ci"))
