"""The one place that turns settings into the tracker and the archive.

Backends are imported lazily so that a laptop using the local ones never needs
Jira or SharePoint credentials, and tests pass their own settings through the
same function as production.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from certrenew.adapters.archive import Archive
from certrenew.adapters.tracker import TicketTracker
from certrenew.config import Settings


@dataclass(frozen=True)
class ArchiveSetup:
    archive: Archive
    root_folder: str
    on_conflict: Literal["keep_old", "refuse"]


def build_tracker(settings: Settings) -> TicketTracker:
    if settings.tracker == "jira":
        from certrenew.adapters.tracker.jira import JiraTracker

        return JiraTracker.from_settings(settings.jira)
    from certrenew.adapters.tracker.local import LocalTracker

    return LocalTracker(settings.data_dir / "tickets.sqlite3", settings.jira)


def build_archive(settings: Settings) -> ArchiveSetup:
    if settings.archive == "sharepoint":
        from certrenew.adapters.archive.sharepoint import SharePointArchive

        sp = settings.sharepoint
        return ArchiveSetup(SharePointArchive.from_settings(sp), sp.root_folder, sp.on_conflict)
    from certrenew.adapters.archive.local import LocalArchive

    return ArchiveSetup(
        LocalArchive(settings.local_archive_path()),
        settings.local_archive.root_folder,
        "keep_old",
    )
