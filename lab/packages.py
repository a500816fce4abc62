"""Distribution packages the lab needs (nginx, chromium, postgresql, pebble), installed once.

Tests install what is missing themselves when they run as root, as CI does.
Several test processes may ask at once (the suite runs in parallel), and apt
allows one install at a time: a lock file makes them take turns, and each
finds the package there once the one before it has installed it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable

from certrenew.errors import CertRenewError

LOCK = "/tmp/certrenew-apt.lock"


def ensure_installed(found: Callable[[], str | None], *packages: str) -> str:
    """What `found` finds, after `apt-get install packages` when it finds nothing."""
    if (path := found()) is not None:
        return path
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise CertRenewError(
            f"{' '.join(packages)} is not installed: run `apt-get install {' '.join(packages)}` "
            "as root (the tests do it themselves when run as root)"
        )
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path := found()) is not None:
            return path  # installed by another test process while this one waited
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise CertRenewError(
                    f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()[-500:]}"
                )
    if (path := found()) is None:
        raise CertRenewError(f"apt-get installed {' '.join(packages)} but it is not found")
    return path
