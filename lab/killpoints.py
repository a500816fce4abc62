"""Kill the process running a renewal at a chosen side effect: the kill matrix's tool.

`python -m certrenew.lab.killpoints FLOW_RUN_ID` runs one attempt of a renewal
run, as the serving process's child would, with the tracker, the archive and
the notice channels the wiring builds wrapped so that the calls named in
`CERTRENEW_KILL_AT` end the process with SIGKILL: no cleanup, no result
written, exactly what a power cut or the OOM killer leaves behind.

A kill point is `<before|after>:<operation>:<match>[:<n>]`: the n-th call
(default 1) of the tracker, archive or notice `operation` whose description
contains `match`, counted over every attempt of the renewal. Descriptions are
the ticket label for `create_ticket`, `<key> <step marker>` for
`add_comment`, `<from> <to>` for `link_tickets`, `<key> <file name>` for
attachments, `<folder>/<name>` for archive files and the notice id for
`deliver`. Counts and the points already fired are kept in the JSON file
`CERTRENEW_KILL_STATE`, so each point fires once and the attempts that
continue the renewal run to the next point. Nothing of this is imported by the
product: only this entry point installs it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

KILL_AT_ENV = "CERTRENEW_KILL_AT"
KILL_STATE_ENV = "CERTRENEW_KILL_STATE"

# Operation → how to describe a call from its arguments (after `self`).
TRACKER_CALLS: dict[str, Callable[..., str]] = {
    "create_ticket": lambda new: new.label,
    "link_tickets": lambda from_key, to_key, _type: f"{from_key} {to_key}",
    "add_comment": lambda key, body: f"{key} {_marker(body)}",
    "add_attachment": lambda key, filename, _data: f"{key} {filename}",
    "download_attachment": lambda key, attachment: f"{key} {attachment.filename}",
    "delete_attachment": lambda key, attachment: f"{key} {attachment.filename}",
    "close_ticket": lambda key: key,
}
ARCHIVE_CALLS: dict[str, Callable[..., str]] = {
    "write_file": lambda folder, name, _data: f"{folder}/{name}",
    "rename_file": lambda folder, name, new_name: f"{folder}/{name} {new_name}",
    "delete_file": lambda folder, name: f"{folder}/{name}",
}
NOTICE_CALLS: dict[str, Callable[..., str]] = {"deliver": lambda notice: notice.id}


def _marker(body: str) -> str:
    return next((line for line in body.splitlines() if line.startswith("[certrenew:")), "")


@dataclass(frozen=True)
class KillPoint:
    when: str  # "before" or "after"
    operation: str
    match: str
    nth: int = 1

    @classmethod
    def parse(cls, text: str) -> KillPoint:
        when, operation, match, *nth = text.split(":")
        if when not in ("before", "after"):
            raise ValueError(f"kill point '{text}': say 'before' or 'after' first")
        return cls(when, operation, match, int(nth[0]) if nth else 1)

    def __str__(self) -> str:
        return f"{self.when}:{self.operation}:{self.match}:{self.nth}"


class KillSwitch:
    """Counts the planned points' calls in the state file; fires each point once."""

    def __init__(self, points: list[KillPoint], state: Path) -> None:
        self.points = points
        self.state = state

    @classmethod
    def from_env(cls) -> KillSwitch | None:
        planned = os.environ.get(KILL_AT_ENV, "")
        if not planned.strip():
            return None
        points = [KillPoint.parse(p.strip()) for p in planned.split(",") if p.strip()]
        return cls(points, Path(os.environ[KILL_STATE_ENV]))

    def load(self) -> dict[str, Any]:
        if not self.state.exists():
            return {"counts": {}, "fired": []}
        loaded: dict[str, Any] = json.loads(self.state.read_text(encoding="utf-8"))
        return loaded

    def reached(self, when: str, operation: str, description: str) -> None:
        state = self.load()
        hit: KillPoint | None = None
        for point in self.points:
            if (point.when, point.operation) != (when, operation) or point.match not in description:
                continue
            name = str(point)
            state["counts"][name] = state["counts"].get(name, 0) + 1
            if hit is None and name not in state["fired"] and state["counts"][name] == point.nth:
                hit = point
        if hit is not None:
            state["fired"].append(str(hit))
        _write(self.state, json.dumps(state, indent=1))
        if hit is not None:
            os.kill(os.getpid(), signal.SIGKILL)


def _write(path: Path, text: str) -> None:
    partial = path.with_suffix(".tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


class Killing:
    """Stands for a tracker, archive or notice channel; its side effects pass the switch."""

    def __init__(self, inner: object, calls: dict[str, Callable[..., str]], switch: KillSwitch):
        self._inner = inner
        self._calls = calls
        self._switch = switch

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        describe = self._calls.get(name)
        if describe is None:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            description = describe(*args, **kwargs)
            self._switch.reached("before", name, description)
            result = value(*args, **kwargs)
            self._switch.reached("after", name, description)
            return result

        return call


def install(switch: KillSwitch) -> None:
    """Wrap what the wiring builds, so every renewal context of this process goes through it."""
    from dataclasses import replace

    from certrenew.adapters import wiring

    build_tracker, build_archive = wiring.build_tracker, wiring.build_archive
    build_notice_channels = wiring.build_notice_channels

    def tracker(settings: Any) -> Any:
        return Killing(build_tracker(settings), TRACKER_CALLS, switch)

    def archive(settings: Any) -> Any:
        setup = build_archive(settings)
        return replace(setup, archive=Killing(setup.archive, ARCHIVE_CALLS, switch))

    def channels(settings: Any) -> Any:
        return [Killing(c, NOTICE_CALLS, switch) for c in build_notice_channels(settings)]

    wiring.build_tracker = tracker
    wiring.build_archive = archive
    wiring.build_notice_channels = channels


def run_attempt(flow_run_id: UUID) -> None:
    """One attempt of the renewal run, in this process, as Prefect's runner starts it."""
    from prefect import get_client
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import run_flow

    from certrenew.flows.renew_certificate import renew_certificate

    with handle_engine_signals(flow_run_id):
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(flow_run_id)
        run_flow(renew_certificate, flow_run=flow_run)


def serve_attempts() -> None:
    """Run an attempt per flow run id read from standard input, each in a forked child.

    The parent imports Prefect and the flow once; every child starts from that
    state, so an attempt costs the flow's own work, not seconds of imports.
    Each line written back is the child's exit code (-9 when a point killed it).
    """
    from certrenew.flows import renew_certificate  # noqa: F401  (imported once, before forking)

    for line in sys.stdin:
        child = os.fork()
        if child == 0:
            try:
                log = os.open(os.environ.get("CERTRENEW_KILL_LOG", os.devnull), _APPEND, 0o600)
                os.dup2(log, 1)
                os.dup2(log, 2)
                main([line.strip()])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(child, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def main(argv: list[str]) -> None:
    if argv == ["--serve"]:
        serve_attempts()
        return
    switch = KillSwitch.from_env()
    if switch is not None:
        install(switch)
    run_attempt(UUID(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
