"""The local tracker's SQLite file under writers in several processes at once.

The renewal flow, the demo's people and `certrenew tickets` write the same
file from different processes. Here several processes open tickets, comment,
attach and link at the same moment; afterwards nothing is lost or doubled:
every key is unique and numbers run without a gap, every comment and
attachment is there once, and SQLite finds the file intact.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from certrenew.adapters.tracker import NewTicket
from certrenew.adapters.tracker.local import LocalTracker

WRITERS = 6
ROUNDS = 15


def writer(path: Path, shared: str, number: int, start: Any) -> list[str]:
    """One process: a ticket per round, linked to the shared one, with a comment and a file."""
    tracker = LocalTracker(path)
    start.wait()
    keys = []
    for round_ in range(ROUNDS):
        label = f"writer-{number}-{round_}"
        key = tracker.create_ticket(NewTicket("SIS", label, "", label, ("concurrency",))).key
        tracker.add_comment(shared, f"writer {number} round {round_}")
        tracker.add_comment(key, f"opened by writer {number}")
        tracker.add_attachment(shared, f"{label}.txt", label.encode())
        tracker.link_tickets(key, shared, "Relates")
        keys.append(key)
    return keys


def test_writers_in_several_processes_lose_and_double_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    tracker = LocalTracker(path)
    shared = tracker.create_ticket(NewTicket("ST", "shared", "", "shared")).key
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Barrier(WRITERS)
    with context.Pool(WRITERS) as pool:
        results = pool.starmap(writer, [(path, shared, n, start) for n in range(WRITERS)])

    keys = [key for keys in results for key in keys]
    assert len(set(keys)) == WRITERS * ROUNDS
    assert sorted(int(key.split("-")[1]) for key in keys) == list(range(1, WRITERS * ROUNDS + 1))
    for number, own in enumerate(results):
        for round_, key in enumerate(own):
            assert [t.key for t in tracker.find_tickets(f"writer-{number}-{round_}")] == [key]
            assert tracker.comments(key) == [f"opened by writer {number}"]
    said = Counter(tracker.comments(shared))
    assert said == Counter(f"writer {n} round {r}" for n in range(WRITERS) for r in range(ROUNDS))
    attached = tracker.attachments(shared)
    files = {a.filename: tracker.download_attachment(shared, a) for a in attached}
    assert len(attached) == len(files) == WRITERS * ROUNDS
    assert all(data == name.removesuffix(".txt").encode() for name, data in files.items())
    assert {link.other_key for link in tracker.links(shared)} == set(keys)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
