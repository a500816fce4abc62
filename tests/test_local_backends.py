"""The local tracker and archive: the contract suites plus what is particular to them."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from certrenew.adapters.archive import Archive
from certrenew.adapters.archive.local import LocalArchive
from certrenew.adapters.tracker import Link, NewTicket, TicketTracker, local
from certrenew.adapters.tracker.local import LocalTracker, TicketLink
from certrenew.errors import ArchiveError, ServiceUnavailable, TicketNotFound, TrackerError
from certrenew.naming import renewal_folder
from tests.contract.archive_contract import ArchiveContract
from tests.contract.tracker_contract import TrackerContract, new_ticket

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


@pytest.fixture
def tracker(tmp_path: Path) -> LocalTracker:
    return LocalTracker(tmp_path / "data" / "tickets.sqlite3")


@pytest.fixture
def archive(tmp_path: Path) -> LocalArchive:
    return LocalArchive(tmp_path / "archive")


class TestLocalTrackerContract(TrackerContract):
    pass


class TestLocalArchiveContract(ArchiveContract):
    pass


# --- tracker ------------------------------------------------------------------------------


def test_satisfies_the_protocols(tracker: LocalTracker, archive: LocalArchive) -> None:
    assert isinstance(tracker, TicketTracker)
    assert isinstance(archive, Archive)


def test_keys_count_per_project_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    first = LocalTracker(path)
    keys = [first.create_ticket(new_ticket(p)).key for p in ("SIS", "SIS", "ST", "SIS")]
    assert keys == ["SIS-1", "SIS-2", "ST-1", "SIS-3"]
    again = LocalTracker(path)
    assert again.create_ticket(new_ticket("ST")).key == "ST-2"
    assert again.get_ticket("SIS-2").summary == first.get_ticket("SIS-2").summary


def test_status_goes_from_open_to_the_configured_done_state(tmp_path: Path) -> None:
    tracker = LocalTracker(tmp_path / "t.sqlite3", done_status="Resolt")
    ticket = tracker.create_ticket(new_ticket("SIS"))
    assert ticket.status == "Open"
    tracker.close_ticket(ticket.key)
    assert tracker.get_ticket(ticket.key).status == "Resolt"


def test_url_names_the_database_and_the_key(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket(new_ticket("SIS"))
    assert ticket.url == f"{tracker.path.as_uri()}#{ticket.key}"
    assert tracker.path.is_absolute()
    assert tracker.get_ticket(ticket.key).url == ticket.url


def test_links_show_on_both_tickets_with_their_direction(tracker: LocalTracker) -> None:
    install = tracker.create_ticket(new_ticket("SIS")).key
    csr = tracker.create_ticket(new_ticket("SIS")).key
    tracker.link_tickets(install, csr, "Blocks")
    tracker.link_tickets(csr, install, "Blocks")
    assert tracker.directed_links(install) == [TicketLink("Blocks", csr, outward=True)]
    assert tracker.directed_links(csr) == [TicketLink("Blocks", install, outward=False)]
    assert tracker.links(csr) == [Link("Blocks", install)]


def test_ticket_fields_are_kept(tracker: LocalTracker) -> None:
    new = NewTicket(
        project="ST",
        summary="Quina CA renova seu.example.cat?",
        description="Línia 1\nLínia 2 amb «cometes» i l'apòstrof",
        label="certrenew-r1-owner",
        assignee="cap.servei",
    )
    key = tracker.create_ticket(new).key
    assert tracker.description(key) == new.description
    assert [t.key for t in tracker.all_tickets()] == [key]


@pytest.mark.parametrize("project", ["sis", "SIS-1", "", "S I S"])
def test_bad_project_key_is_refused(tracker: LocalTracker, project: str) -> None:
    with pytest.raises(TrackerError, match="is not a project key"):
        tracker.create_ticket(new_ticket(project))


def test_operations_on_a_missing_ticket_name_it(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket(new_ticket("SIS")).key
    for call in (
        lambda: tracker.add_comment("SIS-404", "x"),
        lambda: tracker.add_attachment("SIS-404", "a.csr", b"x"),
        lambda: tracker.link_tickets(ticket, "SIS-404", "Relates"),
        lambda: tracker.close_ticket("SIS-404"),
        lambda: tracker.attachments("SIS-404"),
    ):
        with pytest.raises(TicketNotFound, match="SIS-404"):
            call()
    assert tracker.links(ticket) == []


def test_self_link_and_path_like_attachment_names_are_refused(tracker: LocalTracker) -> None:
    key = tracker.create_ticket(new_ticket("SIS")).key
    with pytest.raises(TrackerError, match="to itself"):
        tracker.link_tickets(key, key, "Relates")
    with pytest.raises(TrackerError, match="not a file name"):
        tracker.add_attachment(key, "../seu.key", b"x")


def test_deleted_attachment_cannot_be_downloaded(tracker: LocalTracker) -> None:
    key = tracker.create_ticket(new_ticket("SIS")).key
    attachment = tracker.add_attachment(key, "seu.example.cat.key", b"key bytes")
    tracker.delete_attachment(key, attachment)
    tracker.delete_attachment(key, attachment)
    with pytest.raises(
        TrackerError, match=re.escape("no longer has the attachment 'seu.example.cat.key'")
    ):
        tracker.download_attachment(key, attachment)


def test_unwritable_location_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(TrackerError, match="check that data_dir points to a writable folder"):
        LocalTracker(blocker / "tickets.sqlite3")


def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    path.write_bytes(b"these are notes, not tickets" * 100)
    with pytest.raises(TrackerError, match="cannot use the local ticket database"):
        LocalTracker(path)


def test_a_database_held_locked_is_reported_as_retryable(
    tracker: LocalTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "BUSY_TIMEOUT_SECONDS", 0.05)
    holder = sqlite3.connect(tracker.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(ServiceUnavailable, match="can be retried"):
            tracker.create_ticket(new_ticket("SIS"))
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert tracker.create_ticket(new_ticket("SIS")).key == "SIS-1"


TICKETS_PER_WRITER = 25


def _write_tickets(path: str, writer: str, start: Event) -> None:
    """One process's share: open, comment and attach, as the flow and the demo do."""
    tracker = LocalTracker(Path(path))
    start.wait(60)
    for n in range(TICKETS_PER_WRITER):
        project = "SIS" if n % 3 else "ST"
        key = tracker.create_ticket(new_ticket(project, label=f"writer-{writer}")).key
        tracker.add_comment(key, f"{writer} {n}")
        tracker.add_attachment(key, f"{writer}-{n}.csr", writer.encode() * 1000)


@pytest.mark.timeout(180)
def test_two_processes_writing_at_once_lose_and_double_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_write_tickets, args=(str(path), name, start)) for name in "AB"
    ]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(120)
    for process in writers:
        if process.is_alive():
            process.kill()
    assert [p.exitcode for p in writers] == [0, 0]

    tracker = LocalTracker(path)
    tickets = tracker.all_tickets()
    keys = [t.key for t in tickets]
    assert len(keys) == len(set(keys)) == 2 * TICKETS_PER_WRITER
    per_project = {
        p: sorted(int(k.split("-")[1]) for k in keys if k.startswith(p + "-"))
        for p in ("SIS", "ST")
    }
    for numbers in per_project.values():
        assert numbers == list(range(1, len(numbers) + 1))  # no gap, no repeat
    for writer in "AB":
        mine = tracker.find_tickets(f"writer-{writer}")
        assert len(mine) == TICKETS_PER_WRITER
        assert sorted(tracker.comments(t.key)[0] for t in mine) == sorted(
            f"{writer} {n}" for n in range(TICKETS_PER_WRITER)
        )
        for ticket in mine:
            (attachment,) = tracker.attachments(ticket.key)
            assert tracker.download_attachment(ticket.key, attachment) == writer.encode() * 1000


# --- archive ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "folder",
    ["../outside", "CERTIFICATS/../../outside", "CERTIFICATS/./CDS", "CERTIFICATS\\..\\x"],
)
def test_path_traversal_in_folders_is_refused(archive: LocalArchive, folder: str) -> None:
    with pytest.raises(ArchiveError, match="not a safe archive path"):
        archive.ensure_folder(folder)
    assert not (archive.root.parent / "outside").exists()


@pytest.mark.parametrize("name", ["..", "../seu.key", "a\\b.crt", "", " "])
def test_path_traversal_in_file_names_is_refused(archive: LocalArchive, name: str) -> None:
    archive.ensure_folder("CERTIFICATS")
    with pytest.raises(ArchiveError, match="not a safe archive path"):
        archive.write_file("CERTIFICATS", name, b"x")


def test_symlink_out_of_the_archive_is_refused(archive: LocalArchive, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    archive.ensure_folder("CERTIFICATS")
    (archive.root / "CERTIFICATS" / "CDS").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ArchiveError, match="leads outside the archive"):
        archive.write_file("CERTIFICATS/CDS", "seu.key", b"x")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_layout_mirrors_sharepoint(archive: LocalArchive) -> None:
    folder = renewal_folder("CERTIFICATS/CDS", "CESICAT", 2026, "seu.example.cat")
    archive.ensure_folder(folder)
    archive.write_file(folder, "seu.example.cat.crt", b"crt")
    expected = archive.root / "CERTIFICATS" / "CDS" / "CESICAT" / "2026" / "seu.example.cat"
    assert (expected / "seu.example.cat.crt").read_bytes() == b"crt"
    assert archive.location(folder) == str(expected)
    assert Path(archive.location(folder)).is_absolute()


def test_write_into_a_missing_folder_says_to_ensure_it(archive: LocalArchive) -> None:
    with pytest.raises(ArchiveError, match="ensure the folder"):
        archive.write_file("CERTIFICATS/NOWHERE", "a.crt", b"x")


def test_reading_a_missing_file_names_it(archive: LocalArchive) -> None:
    archive.ensure_folder("CERTIFICATS")
    with pytest.raises(ArchiveError, match=re.escape("absent.crt does not exist")):
        archive.read_file("CERTIFICATS", "absent.crt")


def test_an_interrupted_write_is_not_listed(archive: LocalArchive) -> None:
    archive.ensure_folder("CERTIFICATS")
    (archive.root / "CERTIFICATS" / ".upload-abc123").write_bytes(b"half a key")
    archive.write_file("CERTIFICATS", "seu.key", b"whole key")
    assert [f.name for f in archive.list_files("CERTIFICATS")] == ["seu.key"]


def test_rename_never_overwrites(archive: LocalArchive) -> None:
    archive.ensure_folder("CERTIFICATS")
    archive.write_file("CERTIFICATS", "a.crt", b"one")
    archive.write_file("CERTIFICATS", "b.crt", b"two")
    with pytest.raises(ArchiveError, match="already exists"):
        archive.rename_file("CERTIFICATS", "a.crt", "b.crt")
    assert archive.read_file("CERTIFICATS", "b.crt") == b"two"
