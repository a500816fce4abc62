"""When a ticket's creation was last sent to Jira, kept so that a lost answer is never doubled.

Jira's search index lags behind writes (seconds on Server/Data Center, longer
on Cloud), and an issue's key is the only thing Jira finds at once. So when the
answer to a create is lost, nothing but the label search can find the ticket,
and only once the index has caught up. The tracker records here, before each
create, when it sent it; until the search has had its lag bound since then, an
empty search proves nothing and the tracker keeps searching instead of creating.

Once Jira answers, the key is recorded too: a rerun then reads the ticket by
its key, at once, instead of waiting for the search. The record is a file per
label (named by a hash: labels may hold any character), written atomically, so
a step rerun after a crash, in another process, knows about a create the
crashed one sent. Without a folder (`certrenew check jira`, unit tests) it is
kept in memory only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Intent:
    """A create sent at `at` (seconds since the epoch), and the key Jira answered, if it did."""

    at: float
    key: str | None = None


class CreateIntents:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._memory: dict[str, Intent] = {}

    def _path(self, label: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / hashlib.sha256(label.encode()).hexdigest()[:32]

    def record(self, label: str, intent: Intent) -> None:
        """Before a create is sent, say when; once answered, say which key it got."""
        self._memory[label] = intent
        path = self._path(label)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as out:
            json.dump({"at": intent.at, "key": intent.key}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def last(self, label: str) -> Intent | None:
        """The latest create for `label`, sent by this process or one before it."""
        found = [self._memory[label]] if label in self._memory else []
        path = self._path(label)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                stored = json.loads(path.read_text(encoding="utf-8"))
                found.append(Intent(float(stored["at"]), stored.get("key")))
        return max(found, key=lambda intent: intent.at, default=None)

    def forget(self, label: str) -> None:
        """The create that was sent is known not to have happened (Jira refused it)."""
        self._memory.pop(label, None)
        path = self._path(label)
        if path is not None:
            path.unlink(missing_ok=True)
