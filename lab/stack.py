"""A Prefect server and a serving process on this machine, for the demo and the tests.

Each is a real process (`prefect server start`, `python -m certrenew.deployments.serve`),
started with its own PREFECT_HOME so nothing touches the user's ~/.prefect.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from certrenew.errors import CertRenewError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_env(home: Path, api_url: str) -> dict[str, str]:
    """Environment for every process of the stack: one server, one home, quiet heartbeats."""
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api_url,
            "PREFECT_UI_URL": api_url.removesuffix("/api"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": env.get("PREFECT_LOGGING_LEVEL", "WARNING"),
            # Quiet processes, but every step's line in the run's Logs tab.
            "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
            "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        }
    )
    return env


class Process:
    """A child process whose output goes to a log file, stopped on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            args, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class LocalStack:
    """`prefect server start` on loopback plus the serving process for the renewal flow.

    Given the `api_url` of a server that already runs, only the serving process starts;
    with `serving=False`, only the server.
    """

    def __init__(
        self,
        home: Path,
        config: Path | None,
        api_url: str | None = None,
        serve_args: tuple[str, ...] = (),
        serving: bool = True,
    ) -> None:
        self.home = home
        self.config = config
        self.serve_args = serve_args
        self.serving = serving  # False: the server only (workers run the flows)
        self.port = free_port()
        self.own_server = api_url is None
        self.api_url = api_url or f"http://127.0.0.1:{self.port}/api"
        self.env = prefect_env(home, self.api_url)
        # The serving process's HTTP port (alerts in, metrics out): a free one, with a
        # token of its own, so stacks running side by side never meet.
        self.intake_port = free_port()
        self.intake_token = secrets.token_urlsafe(24)
        self.env["CERTRENEW_INTAKE__PORT"] = str(self.intake_port)
        self.env["CERTRENEW_INTAKE__TOKEN"] = self.intake_token
        self.server: Process | None = None
        self.runner: Process | None = None

    @property
    def intake_url(self) -> str:
        return f"http://127.0.0.1:{self.intake_port}"

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def start(self, timeout: float = 120) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.own_server:
            self.start_server(timeout)
        if self.serving:
            self.serve()
        return self

    def start_server(self, timeout: float = 120) -> Process:
        """Start the Prefect server (again, after it was stopped: same port and database)."""
        self.server = Process(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            self.env,
            self.home / "server.log",
        )
        try:
            self._wait_healthy(timeout)
        except BaseException:  # not healthy in time, or Ctrl-C: leave no server behind
            self.stop()
            raise
        return self.server

    def serve(self) -> Process:
        """Start the serving process (again, after it died)."""
        args = [sys.executable, "-m", "certrenew.deployments.serve"]
        if self.config:
            args += ["--config", str(self.config)]
        args += self.serve_args
        self.runner = Process(args, self.env, self.home / "serve.log")
        return self.runner

    def _wait_healthy(self, timeout: float) -> None:
        assert self.server
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.proc.poll() is not None:
                raise CertRenewError(f"the Prefect server exited at start:\n{self.server.tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise CertRenewError(
            f"the Prefect server did not answer on {self.api_url} within {timeout:.0f} s; "
            f"see {self.home / 'server.log'}"
        )

    def stop(self) -> None:
        for process in (self.runner, self.server):
            if process:
                process.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
