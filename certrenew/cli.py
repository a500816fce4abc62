"""The `certrenew` command line.

Errors of the project (CertRenewError) are printed as one line without a
traceback: they already say what to do.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from certrenew.config import Settings, load_settings
from certrenew.errors import CertRenewError

app = typer.Typer(
    help="Certificate renewal runbook: detect expiring certificates and renew them.",
    no_args_is_help=True,
    add_completion=False,
)
check_app = typer.Typer(help="Check a live integration before going live.", no_args_is_help=True)
app.add_typer(check_app, name="check")

err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration (default: $CERTRENEW_CONFIG)", show_default=False
    ),
]


def friendly_errors(func: F) -> F:
    """Print project errors as one actionable line; exit 3 (UNKNOWN in monitoring terms)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CertRenewError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def settings_from(config: Path | None) -> Settings:
    return load_settings(config)


@app.command("config")
@friendly_errors
def show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = settings_from(config)
    sys.stdout.write(settings.model_dump_json(indent=2) + "\n")


def main() -> None:
    app()


@check_app.command("jira")
@friendly_errors
def check_jira_command(
    config: ConfigOption = None,
    issue: Annotated[
        str | None,
        typer.Option(help="An open ticket (e.g. SIS-12) to check the done transition on"),
    ] = None,
) -> None:
    """Check that Jira has what the ticket chain needs; exit 1 if something is missing."""
    from tasks.tracker.jira_check import all_present, check_jira, format_checklist

    items = check_jira(settings_from(config).jira, issue=issue)
    sys.stdout.write(format_checklist(items) + "\n")
    if not all_present(items):
        raise typer.Exit(1)
