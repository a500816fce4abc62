"""Shared fixtures live in tests/fixtures_*.py modules, registered here."""

pytest_plugins: list[str] = ["tests.fixtures_jira"]
