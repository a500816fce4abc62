"""A throw-away PostgreSQL cluster on loopback, for the scale-out test.

Uses the distribution's `postgresql` package (installed with apt-get when it
is missing and this runs as root). `initdb` refuses to run as root, so as root
the cluster belongs to the `postgres` user, in a folder of its own under /tmp
(pytest's folders are closed to other users).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import tempfile
from glob import glob
from pathlib import Path
from typing import Self

from certrenew.errors import CertRenewError
from certrenew.lab.packages import ensure_installed
from certrenew.lab.stack import free_port


def postgres_bin() -> Path:
    """The folder of `initdb` and `pg_ctl`: on the PATH, else the package's own folder."""

    def initdb() -> str | None:
        versions = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
        return shutil.which("initdb") or (versions[-1] if versions else None)

    return Path(ensure_installed(initdb, "postgresql", "postgresql-contrib")).resolve().parent


class PostgresCluster:
    """`initdb` + `pg_ctl start` in a temporary folder; `url` is for Prefect (asyncpg)."""

    def __init__(self, database: str = "prefect") -> None:
        self.bin = postgres_bin()
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="certrenew-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else getpass.getuser()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise CertRenewError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> Self:
        if self.as_root:
            shutil.chown(self.root, self.user, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        options = f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), self.database)
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
