"""How `certrenew scan` shows its results: a table for people, JSON for machines."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from certrenew.inventory import Inventory
from certrenew.probe import STATUSES, ProbeResult, run_scan, target_count

STATUS_STYLE = {
    "ok": "green",
    "warning": "yellow",
    "critical": "bold red",
    "expired": "bold white on red",
    "error": "magenta",
}
# Below this many targets a scan is over before a bar would help.
PROGRESS_MIN_TARGETS = 50


def scan_with_progress(
    inventory: Inventory, *, concurrency: int, timeout: float, console: Console
) -> list[ProbeResult]:
    """Run the scan, with a progress bar on `console` for long scans on a terminal."""
    total = target_count(inventory)
    if total < PROGRESS_MIN_TARGETS or not console.is_terminal:
        return run_scan(inventory, concurrency=concurrency, timeout=timeout)
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


def results_table(results: Sequence[ProbeResult]) -> Table:
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
            (r.not_after or "")[:16].replace("T", " "),
            r.name,
            r.target,
            r.subject_cn or "",
            Text(problem(r), style=style),
        )
    return table


def summary_line(results: Sequence[ProbeResult]) -> Text:
    counts = Counter(r.status for r in results)
    line = Text(f"{len(results)} targets: ")
    parts = [(f"{counts[s]} {s}", STATUS_STYLE[s]) for s in STATUSES if counts[s]]
    for index, (text, style) in enumerate(parts):
        line.append(("" if index == 0 else ", ") + text, style=style)
    return line


def results_json(results: Sequence[ProbeResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False)
