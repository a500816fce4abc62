"""The `certrenew` command line.

One handler at the top (CertRenewGroup.main) answers every failure of every
command with one line and exit code 3 (UNKNOWN in monitoring terms), never a
traceback: errors a person can fix (errors.PERSON_FIXABLE) already say what
to do; anything else is named with where it happened, without its message,
which may quote a secret.
"""

from __future__ import annotations

import getpass
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from certrenew.config import Settings, load_settings
from certrenew.errors import PERSON_FIXABLE, CertRenewError, InventoryError, TrackerError
from certrenew.printable import printable

if TYPE_CHECKING:
    from certrenew.adapters.tracker import AuthoredTracker

# Monitoring plugins' UNKNOWN: the command could not do its job.
FAILED = 3
# Wide enough for any table row: output that is not a terminal is never wrapped.
UNWRAPPED_WIDTH = 100_000


class CertRenewGroup(TyperGroup):
    """The command line's one failure handler: every failure is one line and exit code 3."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        report = report_unknown if _monitor_reads(argv) else report_failure
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except typer.TyperException as exc:  # the command line itself is wrong
            context = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
                # A group given no command: its help is the answer (typer's class is private).
                typer.echo(context.get_help(), err=True)
                code = exc.exit_code
            else:
                command = f"{context.command_path} --help" if context else "--help"
                code = report(f"{exc.format_message()} (see `{command}`)")
        except typer.Abort:
            code = report("interrupted")
        except PERSON_FIXABLE as exc:
            code = report(str(exc))
        except Exception as exc:
            code = report(unexpected(exc))
        if standalone_mode:
            sys.exit(code)
        return code


def _monitor_reads(argv: list[str]) -> bool:
    """`certrenew scan` without --json: a monitor reads the first line of standard output."""
    words = [arg for arg in argv if not arg.startswith("-")]
    return bool(words) and words[0] == "scan" and "--json" not in argv


def report_failure(message: str) -> int:
    """Print `message` as the one line of a failed command; the exit code to end with."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text.assemble(("error:", "bold red"), " ", printable(message))
    )
    return FAILED


def report_unknown(message: str) -> int:
    """A scan that could not run, told the monitor on its status line: UNKNOWN."""
    from certrenew.scan_report import plugin_unknown_line

    with reader_may_leave():
        sys.stdout.write(plugin_unknown_line(message) + "\n")
    return FAILED


def unexpected(exc: Exception) -> str:
    """A failure nobody foresaw, named by its kind and where it happened.

    Its message is left out: a library's message may quote what it was given,
    a header with a token or a password included. An operating-system error's
    own description is kept (it quotes nothing but a file name).
    """
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [frame for frame in frames if "/certrenew/" in frame.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    place = ""
    if where is not None:
        path = where.filename
        place = f" at {path[path.rfind('/certrenew/') + 1 :]}:{where.lineno}"
    detail = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
    return (
        f"unexpected failure: {type(exc).__name__}{detail}{place}; this is a bug in "
        "certrenew: please report it with the command you ran"
    )


app = typer.Typer(
    cls=CertRenewGroup,
    help="Certificate renewal runbook: detect expiring certificates and renew them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
check_app = typer.Typer(help="Check a live integration before going live.", no_args_is_help=True)
app.add_typer(check_app, name="check")


class _ShowUnlessSubcommand(TyperGroup):
    """`tickets [KEY] [--label L]` stays the listing and the one-ticket view: `tickets show`.

    A group's own optional KEY argument would swallow a subcommand's name, so
    anything that is not a subcommand (a key, an option, nothing) goes to `show`.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["show", *args]
        return super().parse_args(ctx, args)


tickets_app = typer.Typer(
    cls=_ShowUnlessSubcommand,
    help=(
        "The ticket chain: `tickets` lists it, `tickets KEY` shows one ticket (both are `show`); "
        "`attach` and `comment` act on a ticket of the local tracker."
    ),
)
app.add_typer(tickets_app, name="tickets")

err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration (default: $CERTRENEW_CONFIG)", show_default=False
    ),
]


def settings_from(config: Path | None) -> Settings:
    return load_settings(config)


AuthorOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="LOGIN",
        help="who does it, as the ticket records it (default: your login on this machine)",
        show_default=False,
    ),
]


@tickets_app.command("show")
def show_tickets(
    key: Annotated[
        str | None, typer.Argument(help="Show this ticket (e.g. SIS-12)", show_default=False)
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="Only tickets with this label")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """List the renewal tickets, or show one ticket's description, links, comments and files."""
    from certrenew.adapters.wiring import build_tracker
    from certrenew.cli.ticket_view import ticket_detail, ticket_table

    tracker = build_tracker(settings_from(config))
    view = ticket_detail(tracker, key.upper()) if key else ticket_table(tracker, label)
    Console(highlight=False).print(view)


@tickets_app.command("attach")
def attach_files(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="the ticket (e.g. SIS-12)", show_default=False)
    ],
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE", help="files to attach (.csr, .key, .crt, ...)", show_default=False
        ),
    ],
    author: AuthorOption = None,
    config: ConfigOption = None,
) -> None:
    """Attach files to a ticket, as in Jira; a .key is stored but never shown."""
    key = key.upper()
    tracker = _authored_tracker(config, "attach files to")
    login = _login(author)
    # Every file is read before anything is attached: one unreadable file attaches none.
    contents = [(path.name, _read_file(path, key)) for path in files]
    out = Console(highlight=False, soft_wrap=True)
    for name, data in contents:
        attachment = tracker.add_attachment_as(key, name, data, login)
        out.print(
            printable(
                f"{key}: attached {name} ({attachment.size} bytes) as attachment "
                f"{attachment.id}, by {login}"
            ),
            markup=False,
        )


@tickets_app.command("comment")
def comment_ticket(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="the ticket (e.g. SIS-12)", show_default=False)
    ],
    text: Annotated[
        str,
        typer.Argument(
            metavar="TEXT", help="the comment; '-' reads it from standard input", show_default=False
        ),
    ],
    author: AuthorOption = None,
    config: ConfigOption = None,
) -> None:
    """Comment on a ticket, as in Jira (e.g. the CA's answer, a request number)."""
    key = key.upper()
    tracker = _authored_tracker(config, "comment on")
    login = _login(author)
    body = (sys.stdin.read() if text == "-" else text).rstrip()
    if not body.strip():
        raise CertRenewError(
            "the comment is empty: pass its text, or '-' and the text on standard input"
        )
    comment = tracker.add_comment_as(key, body, login)
    Console(highlight=False, soft_wrap=True).print(
        printable(f"{key}: comment added by {login} at {comment.created:%Y-%m-%d %H:%M:%S} UTC"),
        markup=False,
    )


def _authored_tracker(config: Path | None, doing: str) -> AuthoredTracker:
    """The configured tracker, if people act in it through this command (the local one)."""
    from certrenew.adapters.tracker import AuthoredTracker
    from certrenew.adapters.wiring import build_tracker

    settings = settings_from(config)
    if settings.tracker == "jira":
        at = f" at {settings.jira.url}" if settings.jira.url else ""
        raise TrackerError(
            f'tracker = "jira": the tickets live in Jira{at}, so {doing} them in Jira itself '
            "(it records who did); `certrenew tickets attach` and `comment` work on the local "
            "tracker only"
        )
    tracker = build_tracker(settings)
    if not isinstance(tracker, AuthoredTracker):
        raise TrackerError(
            f"the configured tracker does not record who does what: {doing} its tickets "
            "in the tracker itself"
        )
    return tracker


def _login(author: str | None) -> str:
    """--as LOGIN, else the login of whoever runs the command."""
    if author is not None:
        if not author.strip():
            raise CertRenewError("--as needs a login (e.g. --as anna): who does it")
        return author.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise CertRenewError(
            "cannot tell who you are on this machine (no login name): pass --as LOGIN"
        ) from None


def _read_file(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problem = "no such file; check the path"
    except IsADirectoryError:
        problem = "it is a folder; name the files inside it"
    except PermissionError:
        problem = "permission denied; make it readable for you or copy it somewhere readable"
    except OSError as exc:
        problem = f"{exc.strerror or exc}; check the file"
    raise CertRenewError(f"cannot read {path}: {problem} (nothing was attached to {key})")


@app.command("config")
def show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = settings_from(config)
    sys.stdout.write(settings.model_dump_json(indent=2) + "\n")


@app.command("scan")
def scan(
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", help="inventory YAML (default: 'inventory' setting)"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print a JSON array, one object per target")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="scan only part I of N of the inventory (by a hash of each name), "
            "e.g. 1/4 on one machine and 2/4 on another",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Read the expiry of every certificate in the inventory (runbook step 0).

    A Nagios/Icinga check: the first line is the monitor's status line (with
    the days left per target as performance data), then the table. Exit code
    0 all ok, 1 a warning, 2 a critical or expired certificate (or one that
    does not cover its domain), 3 (UNKNOWN) a target could not be checked and
    nothing worse, the inventory is empty or the scan could not run.
    """
    from certrenew.inventory import Shard, load_inventory
    from certrenew.probe import exit_code
    from certrenew.scan_report import (
        plugin_status_line,
        results_table,
        scan_with_progress,
        summary_line,
        write_results_json,
    )

    try:
        part = Shard.parse(shard) if shard is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--shard'") from None
    settings = settings_from(config)
    path = inventory or settings.inventory
    listed = load_inventory(path)
    if part is not None:
        listed = part.of(listed)
        if not listed.certificates:
            raise InventoryError(
                f"{path}: part {part} of the inventory holds no certificate: use fewer parts"
            )
    if not listed.certificates:
        raise InventoryError(
            f"{path}: the inventory lists no certificate, so nothing was checked: add the "
            "team's certificates (see examples/inventory.yaml) or name another with --inventory"
        )
    results = scan_with_progress(
        listed,
        concurrency=settings.scan.concurrency,
        timeout=settings.scan.timeout_seconds,
        console=err_console,
    )
    with reader_may_leave():
        if as_json:
            write_results_json(results, sys.stdout)
        else:
            sys.stdout.write(plugin_status_line(results, listed) + "\n")
            out = unwrapped_console()
            out.print(results_table(results))
            out.print(summary_line(results))
    raise typer.Exit(exit_code(r.status for r in results))


class _OutputConsole(Console):
    """Standard output whose closed pipe is left to reader_may_leave (rich would exit 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def unwrapped_console() -> Console:
    """The terminal's width on a terminal; elsewhere (a pipe, a monitor) lines are never cut."""
    console = _OutputConsole()
    return console if console.is_terminal else _OutputConsole(width=UNWRAPPED_WIDTH)


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """Output whose reader may stop early (`certrenew scan | head -1`) keeps the exit code.

    The reader has what it wanted; the rest goes nowhere, quietly, so that the
    command still ends with the code it was about to give (a closed pipe would
    otherwise end it with 1, WARNING to a monitor, or 120 at the final flush).
    """
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        nowhere = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nowhere, sys.stdout.fileno())
        os.close(nowhere)


@app.command("renew")
def renew(
    name: Annotated[str, typer.Argument(help="certificate name or domain from the inventory")],
    force: Annotated[
        bool, typer.Option("--force", help="renew even if not yet within its warning threshold")
    ] = False,
    urgent: Annotated[
        bool, typer.Option("--urgent", help="urgent channel: ask a manager's approval first")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Start the renewal runbook for one certificate (needs `certrenew serve` running).

    When the certificate is already being renewed, nothing new starts: the
    request is noted on that renewal's ticket (once a day) and its page printed.
    """
    from certrenew.config import config_path
    from certrenew.inventory import load_inventory
    from certrenew.tasks.guard import admit_renewal
    from certrenew.tasks.prefect_api import require_prefect_api
    from certrenew.triggers import Trigger

    settings = settings_from(config)
    entry = load_inventory(settings.inventory).get(name)
    path = config_path(config)
    require_prefect_api()
    trigger = Trigger("command", f"`certrenew renew` ({_login(None)})")
    admission = admit_renewal(
        settings,
        entry.name,
        trigger,
        config=str(path.resolve()) if path else None,
        force=force,
        urgent=urgent,
    )
    shown = printable(entry.name)
    console = Console(highlight=False, soft_wrap=True)
    if admission.started:
        started = f" started: {admission.run_url}"
        console.print(Text.assemble("renewal of ", (shown, "bold"), started))
    else:
        console.print(f"{shown}: nothing new started, {printable(admission.note)}", markup=False)


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="certificate name or domain from the inventory")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON document: renewals, answers, events")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Every renewal of one certificate as one timeline: tickets and flow runs, who and when.

    Reads the Prefect API (PREFECT_API_URL) and the configured tracker.
    """
    import json

    from certrenew.adapters.wiring import build_tracker
    from certrenew.cli.history_view import history_view
    from certrenew.inventory import load_inventory
    from certrenew.tasks.history import certificate_history

    settings = settings_from(config)
    entry = load_inventory(settings.inventory).get(name)
    ui_url = settings.renewal.flow_ui_url if settings.renewal else None
    found = certificate_history(entry, build_tracker(settings), ui_url)
    if as_json:
        sys.stdout.write(json.dumps(found.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        Console(highlight=False).print(history_view(found))


@app.command("status")
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="print a JSON array, one object per open renewal")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Every open renewal: its step, since when, and its state (crashed ones included).

    Reads the Prefect API (PREFECT_API_URL).
    """
    import json

    from rich.table import Table

    from certrenew.tasks.prefect_api import require_prefect_api
    from certrenew.tasks.status import open_renewals

    settings = settings_from(config)
    require_prefect_api()
    found = open_renewals(settings.renewal.flow_ui_url if settings.renewal else None)
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in found], indent=2) + "\n")
        return
    if not found:
        Console().print("no open renewal")
        return
    table = Table("certificate", "step", "since (UTC)", "state", "run")
    for renewal in found:
        table.add_row(
            Text(printable(renewal.certificate)),
            Text(printable(renewal.step)),
            f"{renewal.since:%Y-%m-%d %H:%M}",
            Text(printable(renewal.state)),
            Text(printable(renewal.url or renewal.run)),
        )
    Console(highlight=False, soft_wrap=True).print(table)


@app.command("recovery")
def recovery(config: ConfigOption = None) -> None:
    """Install the automations that resume crashed renewal runs (`serve` does it too).

    For installs where workers, not `certrenew serve`, run the renewals.
    """
    from certrenew.deployments.recovery import install_recovery

    names = install_recovery(settings_from(config).recovery)
    Console(highlight=False).print(
        "\n".join(f"installed: {name}" for name in names) or "recovery off: automations removed"
    )


@app.command("serve")
def serve_deployments(config: ConfigOption = None) -> None:
    """Serve the renewal flow (and start renewals from expiring-certificate events)."""
    from certrenew.config import config_path
    from certrenew.deployments.serve import main as serve_main

    path = config_path(config)
    serve_main(["--config", str(path.resolve())] if path else [])


@app.command("demo")
def demo(
    unattended: Annotated[
        bool, typer.Option("--unattended", help="play every person's part; run to the end")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON object at the end (with --unattended)")
    ] = False,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="where the demo keeps its state (wiped first)")
    ] = Path(".certrenew/demo"),
    config: ConfigOption = None,
) -> None:
    """Run the whole runbook on this machine: local Prefect, TLS endpoint, CA and tickets."""
    from certrenew.deployments.demo import run_demo

    raise typer.Exit(run_demo(config, unattended, as_json, data_dir.resolve()))


@check_app.command("sharepoint")
def check_sharepoint_command(config: ConfigOption = None) -> None:
    """Get a token, resolve the site and library, write and delete a probe file."""
    from certrenew.adapters.archive.sharepoint.check import check_sharepoint

    results = check_sharepoint(settings_from(config).sharepoint)
    marks = {
        "ok": "[green]ok[/]     ",
        "failed": "[bold red]FAILED[/] ",
        "skipped": "[dim]skipped[/]",
    }
    console = Console(highlight=False, soft_wrap=True)
    for result in results:
        console.print(f"{marks[result.status]} {result.step}: ", end="")
        console.print(printable(result.detail), markup=False)
    if any(result.status != "ok" for result in results):
        raise typer.Exit(1)


@check_app.command("jira")
def check_jira_command(
    config: ConfigOption = None,
    issue: Annotated[
        str | None,
        typer.Option(help="An open ticket (e.g. SIS-12) to check the done transition on"),
    ] = None,
) -> None:
    """Check that Jira has what the ticket chain needs; exit 1 if something is missing."""
    from certrenew.adapters.tracker.jira_check import all_present, check_jira, format_checklist

    settings = settings_from(config)
    items = check_jira(settings.jira, settings.tickets, issue=issue)
    sys.stdout.write(printable(format_checklist(items), lines=True) + "\n")
    if not all_present(items):
        raise typer.Exit(1)
