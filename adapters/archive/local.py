"""The archive on this machine: a folder laid out like the SharePoint library.

Folder and file names come from domains and CA names, i.e. from outside, so
every path is checked to stay below the root before anything touches disk.
Writes go through a temporary file and a rename, so a crash never leaves a
half-written `.key` or `.crt` behind for the next run to mistake for the real one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from certrenew.adapters.archive import StoredFile
from certrenew.errors import ArchiveConflict, ArchiveError
from certrenew.naming import check_archive_name

# A write in progress (or cut short by a crash): never listed as an archived file.
_TEMP_PREFIX = ".upload-"


class LocalArchive:
    """Archive on a local folder; `location()` is an absolute path a person can open."""

    def __init__(self, path: Path) -> None:
        self.root = path.resolve()

    def ensure_folder(self, folder: str) -> None:
        target = self._folder(folder)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ArchiveError(
                f"{target} exists as a file, not a folder: move that file away"
            ) from None
        except OSError as exc:
            raise ArchiveError(
                f"cannot create {target}: {exc.strerror}; check permissions"
            ) from None

    def list_files(self, folder: str) -> list[StoredFile]:
        target = self._folder(folder)
        if not target.is_dir():
            return []
        return sorted(
            (
                StoredFile(p.name, p.stat().st_size)
                for p in target.iterdir()
                if p.is_file() and not p.name.startswith(_TEMP_PREFIX)
            ),
            key=lambda f: f.name,
        )

    def read_file(self, folder: str, name: str) -> bytes:
        target = self._file(folder, name)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise ArchiveError(f"{target} does not exist in the archive") from None
        except OSError as exc:
            raise ArchiveError(f"cannot read {target}: {exc.strerror}") from None

    def write_file(self, folder: str, name: str, data: bytes) -> None:
        target = self._file(folder, name)
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_TEMP_PREFIX)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except FileNotFoundError:
            raise ArchiveError(
                f"{target.parent} does not exist: ensure the folder before writing"
            ) from None
        except OSError as exc:
            raise ArchiveError(f"cannot write {target}: {exc.strerror}") from None

    def rename_file(self, folder: str, name: str, new_name: str) -> None:
        source, target = self._file(folder, name), self._file(folder, new_name)
        if target.exists():
            raise ArchiveConflict(
                f"{target} already exists: move it away by hand before renaming {name}"
            )
        try:
            source.rename(target)
        except FileNotFoundError:
            raise ArchiveError(f"{source} does not exist in the archive") from None

    def delete_file(self, folder: str, name: str) -> None:
        self._file(folder, name).unlink(missing_ok=True)

    def location(self, folder: str) -> str:
        return str(self._folder(folder))

    def _folder(self, folder: str) -> Path:
        parts = [part for part in folder.split("/") if part]
        for part in parts:
            check_archive_name(part, folder)
        target = self.root.joinpath(*parts)
        # Symlinks inside the archive must not lead out of it either.
        if not target.resolve().is_relative_to(self.root):
            raise ArchiveError(f"'{folder}' leads outside the archive {self.root}: refused")
        return target

    def _file(self, folder: str, name: str) -> Path:
        check_archive_name(name)
        return self._folder(folder) / name
