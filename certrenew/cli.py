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


@check_app.command("sharepoint")
@friendly_errors
def check_sharepoint_command(config: ConfigOption = None) -> None:
    """Get a token, resolve the site and library, write and delete a probe file."""
    from tasks.archive.sharepoint_check import check_sharepoint

    results = check_sharepoint(settings_from(config).sharepoint)
    marks = {
        "ok": "[green]ok[/]     ",
        "failed": "[bold red]FAILED[/] ",
        "skipped": "[dim]skipped[/]",
    }
    console = Console(highlight=False, soft_wrap=True)
    for result in results:
        console.print(f"{marks[result.status]} {result.step}: ", end="")
        console.print(result.detail, markup=False)
    if any(result.status != "ok" for result in results):
        raise typer.Exit(1)


def main() -> None:
    app()
