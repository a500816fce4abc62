"""Shared fixtures live in tests/fixtures_*.py modules, registered here."""

pytest_plugins: list[str] = [
    "tests.fixtures_tls",
    "tests.fixtures_prefect",
    "tests.fixtures_renewal",
    "tests.fixtures_sharepoint",
    "tests.fixtures_jira",
    "tests.fixtures_cli",
    "tests.fixtures_browser",
]
