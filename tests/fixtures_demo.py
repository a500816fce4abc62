"""`certrenew demo` as a person runs it: the real command in its own process group.

Shared by the tests that answer its forms through the API (test_demo.py) and
through the browser (test_browser_demo.py).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class Demo:
    """`certrenew demo` running in its own process group, its output read line by line."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "certrenew"), "demo", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,  # as a shell runs a foreground job: Ctrl-C goes to this group
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 240) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"the demo never printed {pattern!r}:\n" + "\n".join(self.seen))

    def ctrl_c(self) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


def processes_of(data_dir: Path) -> list[int]:
    """Processes (the Prefect server, the serving process) whose PREFECT_HOME is the demo's."""
    home = f"PREFECT_HOME={data_dir / 'prefect'}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if home in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path / "demo")
    try:
        yield running
    finally:
        running.stop()


def prefect_servers(data_dir: Path) -> list[str]:
    """Command lines of the Prefect servers on the demo's database (its PREFECT_HOME)."""
    found = []
    for pid in processes_of(data_dir):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "prefect server start" in args or "prefect.server.api.server:create_app" in args:
            found.append(args)
    return found
