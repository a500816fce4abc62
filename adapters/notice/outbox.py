"""Notices written to an outbox, the record of what was sent, and handed to each transport.

Each notice is kept as `<folder>/<id>.eml` (RFC 5322, readable as it lies),
written once. Beside it, `delivery/<id>.json` says per transport when the
notice was taken, or how often it failed and why: a notice some transport has
not taken is pending, and `retry_pending` (every detection run) tries it again.
A lock per notice keeps two processes (the daily detection and a renewal) from
sending the same notice twice. With no transport configured, the outbox alone
is the channel, and any mail relay or a person can pick the files up.
"""

from __future__ import annotations

import email
import email.policy
import fcntl
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from certrenew.adapters.notice import Delivery, DeliveryFailed, Notice, Transport

ID_HEADER = "X-Certrenew-Notice"


class Outbox:
    """NoticeChannel that records each notice once and delivers it on every transport once."""

    def __init__(self, folder: Path, transports: Sequence[Transport] = ()) -> None:
        self.folder = folder
        self.transports = tuple(transports)

    def deliver(self, notice: Notice) -> Delivery:
        self._record(notice)
        return self._send(notice)

    def retry_pending(self) -> list[Delivery]:
        """Every notice a transport has not taken yet, tried again.

        Only notices handed over while transports were configured count:
        notices recorded before (the outbox alone) are not mailed out late.
        """
        deliveries = []
        for state_file in sorted(self._state_folder().glob("*.json")):
            path = self.folder / f"{state_file.stem}.eml"
            if path.exists() and self._waiting(self._state(state_file.stem)):
                deliveries.append(self._send(self._read(path)))
        return deliveries

    def pending(self) -> dict[str, dict[str, Any]]:
        """Per pending notice id, the state of each transport that has not taken it."""
        found = {}
        for state_file in sorted(self._state_folder().glob("*.json")):
            state = self._state(state_file.stem)
            if waiting := self._waiting(state):
                found[state_file.stem] = {name: state.get(name, {}) for name in waiting}
        return found

    def _record(self, notice: Notice) -> None:
        path = self.folder / f"{notice.id}.eml"
        if path.exists():
            return
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["To"] = ", ".join(notice.recipients)
        message[ID_HEADER] = notice.id
        message.set_content(notice.body, cte="8bit")  # readable as it lies in the outbox
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, message.as_bytes())

    def _read(self, path: Path) -> Notice:
        """The notice as recorded; its id is the file's name (headers may come back folded)."""
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        to = str(message["To"] or "")
        body = message.get_content()
        assert isinstance(body, str)
        return Notice(
            path.stem,
            " ".join(str(message["Subject"] or "").split()),
            body,
            tuple(address.strip() for address in to.split(",") if address.strip()),
        )

    def _send(self, notice: Notice) -> Delivery:
        if not self.transports:
            return Delivery(notice.id)
        sent: list[str] = []
        failed: list[tuple[str, str]] = []
        with self._lock(notice.id):
            state = self._state(notice.id)
            for transport in self.transports:
                if "sent_at" in state.get(transport.name, {}):
                    continue
                now = datetime.now(UTC).isoformat(timespec="seconds")
                try:
                    transport.send(notice)
                except DeliveryFailed as exc:
                    tried = int(state.get(transport.name, {}).get("attempts", 0)) + 1
                    state[transport.name] = {"attempts": tried, "failed_at": now, "error": str(exc)}
                    failed.append((transport.name, str(exc)))
                else:
                    state[transport.name] = {"sent_at": now}
                    sent.append(transport.name)
                self._save(notice.id, state)  # after each transport: a crash repeats at most one
        return Delivery(notice.id, tuple(sent), tuple(failed))

    def _waiting(self, state: dict[str, Any]) -> list[str]:
        return [t.name for t in self.transports if "sent_at" not in state.get(t.name, {})]

    def _state_folder(self) -> Path:
        return self.folder / "delivery"

    def _state(self, notice_id: str) -> dict[str, Any]:
        path = self._state_folder() / f"{notice_id}.json"
        if not path.exists():
            return {}
        loaded = json.loads(path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    def _save(self, notice_id: str, state: dict[str, Any]) -> None:
        text = json.dumps(state, indent=2, sort_keys=True)
        _write_atomically(self._state_folder() / f"{notice_id}.json", text.encode())

    @contextmanager
    def _lock(self, notice_id: str) -> Iterator[None]:
        """One sender per notice across processes; the kernel drops it if the process dies."""
        folder = self._state_folder()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{notice_id}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: Path, data: bytes) -> None:
    """A crash mid-write leaves no half file under the real name."""
    partial = path.with_suffix(".tmp")
    partial.write_bytes(data)
    partial.replace(path)
