"""The archive seam: where a renewal's `.csr`, `.key` and `.crt` are kept.

Backends offer a few primitive file operations on folders given as
'/'-separated paths below the archive root. The no-overwrite rule lives here,
once, on top of those primitives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from certrenew.errors import ArchiveConflict, ArchiveError


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int


@dataclass(frozen=True)
class ArchivedFile:
    """A file as stored: where, how big, and its SHA-256 as read back."""

    path: str
    size: int
    sha256: str


@runtime_checkable
class Archive(Protocol):
    """SharePoint in production, a local folder on a laptop."""

    def ensure_folder(self, folder: str) -> None:
        """Create `folder` and its parents; existing parts are fine."""
        ...

    def list_files(self, folder: str) -> list[StoredFile]:
        """Files directly in `folder`; [] when the folder does not exist."""
        ...

    def read_file(self, folder: str, name: str) -> bytes: ...

    def write_file(self, folder: str, name: str, data: bytes) -> None:
        """Store `data` as `folder/name`, replacing what is there."""
        ...

    def rename_file(self, folder: str, name: str, new_name: str) -> None: ...

    def delete_file(self, folder: str, name: str) -> None: ...

    def location(self, folder: str) -> str:
        """Where a person finds `folder` (a URL or a path), for tickets."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_file(
    archive: Archive,
    folder: str,
    name: str,
    data: bytes,
    on_conflict: Literal["keep_old", "refuse"] = "keep_old",
) -> ArchivedFile:
    """Store once: the same bytes again is a no-op; different bytes never silently win.

    With `keep_old` the file already there is renamed `<stem>.old-<n><suffix>`
    before the new one is written; with `refuse` an ArchiveConflict says what to do.
    The stored bytes are read back and compared, so a short upload is caught here.
    """
    archive.ensure_folder(folder)
    present = {f.name: f for f in archive.list_files(folder)}
    # An empty file is what an interrupted chunked upload leaves: replace it, keep nothing.
    if name in present and present[name].size > 0:
        # Sizes first: a different size needs no download to know the bytes differ.
        if present[name].size == len(data) and archive.read_file(folder, name) == data:
            return ArchivedFile(f"{folder}/{name}", len(data), sha256_hex(data))
        if on_conflict == "refuse":
            raise ArchiveConflict(
                f"{archive.location(folder)} already holds a different {name}; move it away "
                'by hand or set on_conflict = "keep_old" to keep it under another name'
            )
        archive.rename_file(folder, name, _free_name(name, present))
    archive.write_file(folder, name, data)
    stored = archive.read_file(folder, name)
    if stored != data:
        raise ArchiveError(
            f"{archive.location(folder)}/{name}: what was stored ({len(stored)} bytes) differs "
            f"from what was sent ({len(data)} bytes); the step will retry the upload"
        )
    return ArchivedFile(f"{folder}/{name}", len(stored), sha256_hex(stored))


def _free_name(name: str, present: dict[str, StoredFile]) -> str:
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    n = 1
    while True:
        candidate = f"{stem}.old-{n}" + (f".{suffix}" if suffix else "")
        if candidate not in present:
            return candidate
        n += 1
