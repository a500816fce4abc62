"""The password safe seam: where the passwords of `.p12` files are kept.

The runbook keeps them in the team's password safe, a KeePass database. The
flow writes a password there and nowhere else; it returns where the password
went (for tickets), never the password.
"""

from __future__ import annotations

from typing import Protocol


class PasswordSafe(Protocol):
    def store(self, group: str, title: str, password: str, notes: str) -> str:
        """Keep `password` under `group`/`title` (a new renewal replaces the old value,
        which stays in the entry's history); where it is, in people's words."""
        ...
