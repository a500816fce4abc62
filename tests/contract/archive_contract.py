"""What every archive must do for the renewal runbook."""

from __future__ import annotations

import pytest

from certrenew.adapters.archive import Archive, StoredFile, store_file
from certrenew.errors import ArchiveConflict, ArchiveError
from certrenew.naming import renewal_folder

# Spaces, accents and apostrophes, as in real library and domain names.
FOLDER = renewal_folder("CERTIFICATS/CDS", "CESICAT", 2026, "l'àrea de prova.example.cat")


class ArchiveContract:
    """Subclasses provide an `archive` fixture (an empty archive per test)."""

    def test_folder_creation_is_idempotent(self, archive: Archive) -> None:
        archive.ensure_folder(FOLDER)
        archive.ensure_folder(FOLDER)
        assert archive.list_files(FOLDER) == []

    def test_missing_folder_lists_empty(self, archive: Archive) -> None:
        assert archive.list_files("CERTIFICATS/CDS/NOWHERE/2026/x.example.cat") == []

    def test_write_read_list(self, archive: Archive) -> None:
        archive.ensure_folder(FOLDER)
        payload = bytes(range(256)) * 4
        archive.write_file(FOLDER, "clau d'exemple.key", payload)
        archive.write_file(FOLDER, "seu.example.cat.crt", b"crt")
        assert archive.read_file(FOLDER, "clau d'exemple.key") == payload
        assert sorted(archive.list_files(FOLDER), key=lambda f: f.name) == [
            StoredFile("clau d'exemple.key", len(payload)),
            StoredFile("seu.example.cat.crt", 3),
        ]

    def test_rename_and_delete(self, archive: Archive) -> None:
        archive.ensure_folder(FOLDER)
        archive.write_file(FOLDER, "a.crt", b"one")
        archive.rename_file(FOLDER, "a.crt", "a.old-1.crt")
        archive.delete_file(FOLDER, "a.old-1.crt")
        assert archive.list_files(FOLDER) == []

    def test_store_same_bytes_twice_is_a_no_op(self, archive: Archive) -> None:
        first = store_file(archive, FOLDER, "seu.example.cat.crt", b"certificate")
        second = store_file(archive, FOLDER, "seu.example.cat.crt", b"certificate")
        assert first == second
        assert [f.name for f in archive.list_files(FOLDER)] == ["seu.example.cat.crt"]

    def test_store_different_bytes_keeps_the_old_file(self, archive: Archive) -> None:
        store_file(archive, FOLDER, "seu.example.cat.crt", b"old certificate")
        stored = store_file(archive, FOLDER, "seu.example.cat.crt", b"new certificate")
        assert stored.size == len(b"new certificate")
        assert archive.read_file(FOLDER, "seu.example.cat.crt") == b"new certificate"
        assert archive.read_file(FOLDER, "seu.example.cat.old-1.crt") == b"old certificate"

    def test_store_refuses_to_overwrite_when_told(self, archive: Archive) -> None:
        store_file(archive, FOLDER, "seu.example.cat.crt", b"old certificate")
        with pytest.raises(ArchiveConflict) as caught:
            store_file(archive, FOLDER, "seu.example.cat.crt", b"new", on_conflict="refuse")
        assert "seu.example.cat.crt" in str(caught.value)
        assert archive.read_file(FOLDER, "seu.example.cat.crt") == b"old certificate"

    @pytest.mark.parametrize(
        "folder, name",
        [
            ("CERTIFICATS/CDS/CESICAT/2026/*.example.cat", "wildcard.example.cat.crt"),
            (FOLDER, "*.example.cat.crt"),
            (FOLDER, "seu:example.crt"),
            (FOLDER, "seu.example.cat."),
        ],
    )
    def test_names_sharepoint_refuses_are_refused(
        self, archive: Archive, folder: str, name: str
    ) -> None:
        """A renewal that stores on a laptop must store on SharePoint too."""
        with pytest.raises(ArchiveError, match="not a safe archive path"):
            archive.ensure_folder(folder)
            archive.write_file(folder, name, b"x")

    def test_location_names_the_folder(self, archive: Archive) -> None:
        archive.ensure_folder(FOLDER)
        assert "CESICAT" in archive.location(FOLDER)
