"""How `certrenew scan` shows its results: a status line for monitors, a table for people, JSON.

The first line follows the Monitoring Plugins guidelines
(https://www.monitoring-plugins.org/doc/guidelines.html#PLUGOUTPUT), so the
command runs unchanged as a Nagios or Icinga check:
`CERTRENEW CRITICAL - 1 expired, 2 warning, 1 unchecked | 'seu 10.0.0.1:443'=-2;30:;7: ...`,
with the days left of every target as performance data (`U` where unknown),
and the thresholds as ranges that alert below them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.text import Text

from certrenew.inventory import Inventory
from certrenew.printable import json_for_terminal, printable
from certrenew.probe import STATUSES, ProbeResult, Status, exit_code, run_scan, target_count

if TYPE_CHECKING:
    from rich.table import Table

STATUS_STYLE = {
    "ok": "green",
    "warning": "yellow",
    "critical": "bold red",
    "expired": "bold white on red",
    "error": "magenta",
}
# Below this many targets a scan is over before a bar would help.
PROGRESS_MIN_TARGETS = 50
PLUGIN_NAME = "CERTRENEW"
PLUGIN_STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# What the status line counts, in its order and words.
PLUGIN_COUNTS: tuple[tuple[Status, str], ...] = (
    ("expired", "expired"),
    ("critical", "critical"),
    ("warning", "warning"),
    ("error", "unchecked"),
)


def scan_with_progress(
    inventory: Inventory, *, concurrency: int, timeout: float, console: Console
) -> list[ProbeResult]:
    """Run the scan, with a progress bar on `console` for long scans on a terminal."""
    total = target_count(inventory)
    if total < PROGRESS_MIN_TARGETS or not console.is_terminal:
        return run_scan(inventory, concurrency=concurrency, timeout=timeout)
    # Imported here: a scan read by a program (--json, a monitor) shows no bar.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scan", total=total)
        return run_scan(
            inventory,
            concurrency=concurrency,
            timeout=timeout,
            on_result=lambda _: progress.advance(task),
        )


def problem(result: ProbeResult) -> str:
    """The one thing to read about a target that is not simply ok."""
    if result.error:
        return result.error
    if result.covers_domain is False:
        return f"does not cover {result.domain}"
    return result.note or ""


def _plain(text: str | None, style: str = "") -> Text:
    """A cell from outside (inventory, certificate, error): plain text, never markup."""
    return Text(printable(text or ""), style=style)


def results_table(results: Sequence[ProbeResult]) -> Table:
    """Every target; names, targets, CNs and messages are plain text without control characters.

    They come from the inventory and from whatever an endpoint serves: a CN
    `[/oops]` is not markup, `[fd00::1]:443` is an address, an escape sequence
    is removed.
    """
    from rich.table import Table  # only a person's table needs it, not --json

    table = Table(title="Certificate expiry (soonest first)", title_justify="left")
    table.add_column("status", no_wrap=True)
    table.add_column("days", justify="right", no_wrap=True)
    table.add_column("expires (UTC)", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("target", overflow="fold")
    table.add_column("served CN", overflow="fold")
    table.add_column("problem", overflow="fold")
    for r in results:
        style = STATUS_STYLE[r.status]
        table.add_row(
            Text(r.status, style=style),
            Text("" if r.days_left is None else str(r.days_left), style=style),
            Text((r.not_after or "")[:16].replace("T", " ")),
            _plain(r.name),
            _plain(r.target),
            _plain(r.subject_cn),
            _plain(problem(r), style),
        )
    return table


def summary_line(results: Sequence[ProbeResult]) -> Text:
    counts = Counter(r.status for r in results)
    line = Text(f"{len(results)} targets: ")
    parts = [(f"{counts[s]} {s}", STATUS_STYLE[s]) for s in STATUSES if counts[s]]
    for index, (text, style) in enumerate(parts):
        line.append(("" if index == 0 else ", ") + text, style=style)
    return line


def write_results_json(results: Iterable[ProbeResult], out: TextIO) -> None:
    """The results as one JSON array, written one result at a time.

    Byte for byte what `json.dumps(list, indent=2)` would give, without ever
    holding the whole document: for 10,000 targets that string and its list
    of dicts were 17 MiB at the scan's peak.
    """
    separator = "[\n  "
    for result in results:
        out.write(separator + json_for_terminal(_array_element(result)))
        separator = ",\n  "
    out.write("[]\n" if separator.startswith("[") else "\n]\n")


# json's C encoder, used only without `indent`: the indented writer is pure Python,
# and was three quarters of the time spent writing 10,000 results.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _array_element(result: ProbeResult) -> str:
    """One result as `json.dumps(indent=2)` lays it out inside the array.

    A result holds scalars and one list of strings, so the layout is written
    here and every value is encoded by the C encoder.
    """
    lines = []
    for name, value in result.as_dict().items():
        if isinstance(value, list) and value:
            text = "[\n      " + ",\n      ".join(map(_encode, value)) + "\n    ]"
        else:
            text = _encode(value)
        lines.append(f"    {_encode(name)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n  }"


def _plugin_text(text: str) -> str:
    """One line with no '|', which would start the performance data."""
    return printable(text).replace("|", "/")


def _perf_label(result: ProbeResult) -> str:
    """`'name target'`: quotes and '=' cannot appear inside a label."""
    label = _plugin_text(f"{result.name} {result.target}")
    return "'" + label.replace("'", "_").replace("=", "_") + "'"


def plugin_status_line(results: Sequence[ProbeResult], inventory: Inventory) -> str:
    """The monitor's one line: state, what counts, then days left per target after '|'."""
    thresholds = {e.name: e.thresholds(inventory.defaults) for e in inventory.certificates}
    code = exit_code(r.status for r in results)
    counts = Counter(r.status for r in results)
    parts = [f"{counts[status]} {word}" for status, word in PLUGIN_COUNTS if counts[status]]
    if parts:
        text = ", ".join(parts)
    else:
        soonest = min(results, key=lambda r: (r.days_left or 0, r.name))
        text = (
            f"all {len(results)} targets ok; the soonest expires in {soonest.days_left} days "
            f"({soonest.name})"
        )
    perfdata = " ".join(
        f"{_perf_label(r)}={'U' if r.days_left is None else r.days_left}"
        f";{thresholds[r.name].warn_days}:;{thresholds[r.name].critical_days}:"
        for r in results
    )
    return f"{PLUGIN_NAME} {PLUGIN_STATES[code]} - {_plugin_text(text)} | {perfdata}"


def plugin_unknown_line(message: str) -> str:
    """The monitor's one line when the scan could not run: UNKNOWN with the reason."""
    return f"{PLUGIN_NAME} {PLUGIN_STATES[3]} - {_plugin_text(message)}"
