"""The one place that turns settings into the adapters a renewal works with.

`renewal_context` builds everything a runbook step gets: the validated
sections it reads and the wired tracker, archive, notice channels and CA
routes. Each adapter can be passed in instead, so a test of a step hands in
its own tracker or archive and needs neither Prefect nor a server. Backends
are imported lazily so that a laptop using the local ones never needs Jira or
SharePoint libraries configured or credentials at hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from certrenew.adapters.archive import Archive
from certrenew.adapters.ca import CaRoute
from certrenew.adapters.notice import NoticeChannel
from certrenew.adapters.password_safe import PasswordSafe
from certrenew.adapters.tracker import TicketTracker
from certrenew.config import (
    CaRouteSettings,
    CsrSettings,
    NoticeSettings,
    RecoverySettings,
    RenewalSettings,
    RolesSettings,
    ScanSettings,
    Settings,
    TicketChainSettings,
)


@dataclass(frozen=True)
class ArchiveSetup:
    """The archive and how the runbook's folders sit in it."""

    archive: Archive
    root_folder: str
    on_conflict: Literal["keep_old", "refuse"] = "keep_old"
    # The archived .key is encrypted with this passphrase when set (masked in any repr).
    key_passphrase: SecretStr | None = field(default=None, repr=False)
    # Where people find that passphrase; quoted in the install ticket.
    key_passphrase_hint: str | None = None


@dataclass(frozen=True)
class PasswordSafeSetup:
    """The password safe and where in it the renewal's passwords go."""

    safe: PasswordSafe
    group: str
    title: str  # with {domain}, {kind}, {ca}


@dataclass(frozen=True)
class RenewalContext:
    """What every renewal step gets; nothing in it is read from settings again."""

    inventory: Path
    scan: ScanSettings
    subject: CsrSettings
    renewal: RenewalSettings
    chain: TicketChainSettings
    notices: NoticeSettings
    roles: RolesSettings
    tracker: TicketTracker
    archive: ArchiveSetup
    notice_channels: tuple[NoticeChannel, ...]
    ca_routes: Mapping[str, CaRoute]
    run_url: str = ""
    # The team's password safe, when configured (the .p12 route needs it).
    password_safe: PasswordSafeSetup | None = None
    # How many crashes a run is retried after by itself (certrenew.tasks.crashes).
    recovery: RecoverySettings = field(default_factory=RecoverySettings)

    def ca_route(self, ca: str) -> CaRoute:
        return self.ca_routes[ca]

    def route_of_old(self, current_ca: str | None) -> CaRoute | None:
        """The route of the CA that issued the certificate being replaced (inventory `ca`)."""
        return self.ca_routes.get(current_ca) if current_ca else None


def renewal_context(
    settings: Settings,
    *,
    tracker: TicketTracker | None = None,
    archive: ArchiveSetup | None = None,
    notice_channels: Sequence[NoticeChannel] | None = None,
    ca_routes: Mapping[str, CaRoute] | None = None,
    run_url: str = "",
) -> RenewalContext:
    """Everything a renewal needs, or a ConfigError naming the missing section, at the start."""
    subject, routes, renewal = settings.for_renewal()
    if ca_routes is None:
        ca_routes = {ca: build_ca_route(section) for ca, section in routes.items()}
    return RenewalContext(
        inventory=settings.inventory,
        scan=settings.scan,
        subject=subject,
        renewal=renewal,
        chain=settings.tickets,
        notices=settings.notices,
        roles=settings.roles,
        tracker=tracker or build_tracker(settings),
        archive=archive or build_archive(settings),
        notice_channels=tuple(
            build_notice_channels(settings) if notice_channels is None else notice_channels
        ),
        ca_routes=ca_routes,
        run_url=run_url,
        password_safe=build_password_safe(settings),
        recovery=settings.recovery,
    )


def build_ca_route(section: CaRouteSettings) -> CaRoute:
    """The route a `[ca_routes.<CA>]` section describes, by its `kind`."""
    if section.kind == "acme":
        from certrenew.adapters.ca.acme import AcmeRoute

        return AcmeRoute(section)
    if section.kind == "p12":
        from certrenew.adapters.ca.p12 import P12Route

        return P12Route(section)
    from certrenew.adapters.ca.portal import PortalRoute

    return PortalRoute(section)


def build_password_safe(settings: Settings) -> PasswordSafeSetup | None:
    """The KeePass database of `[password_safe]`; None when no path is configured."""
    section = settings.password_safe
    if section.path is None:
        return None
    from certrenew.adapters.password_safe.keepass import KeePassSafe

    safe = KeePassSafe(section.path, section.secret_master_password(), section.key_file)
    return PasswordSafeSetup(safe, section.group, section.title)


def build_tracker(settings: Settings) -> TicketTracker:
    if settings.tracker == "jira":
        from certrenew.adapters.tracker.jira import JiraTracker

        return JiraTracker.from_settings(
            settings.jira,
            settings.data_dir / "jira-creates",
            max_attachment_bytes=settings.tickets.max_attachment_bytes,
        )
    from certrenew.adapters.tracker.local import LocalTracker

    return LocalTracker(
        settings.data_dir / "tickets.sqlite3",
        max_attachment_bytes=settings.tickets.max_attachment_bytes,
    )


def build_archive(settings: Settings) -> ArchiveSetup:
    if settings.archive == "sharepoint":
        from certrenew.adapters.archive.sharepoint import SharePointArchive

        sp = settings.sharepoint
        passphrase = sp.secret_key_passphrase()
        return ArchiveSetup(
            SharePointArchive.from_settings(sp),
            sp.root_folder,
            sp.on_conflict,
            SecretStr(passphrase) if passphrase is not None else None,
            sp.key_passphrase_hint,
        )
    from certrenew.adapters.archive.local import LocalArchive

    return ArchiveSetup(
        LocalArchive(settings.local_archive_path()), settings.local_archive.root_folder
    )


def build_notice_channels(settings: Settings) -> list[NoticeChannel]:
    """The outbox, delivering through the transports configured in [notices]."""
    from certrenew.adapters.notice import Transport
    from certrenew.adapters.notice.outbox import Outbox

    transports: list[Transport] = []
    if settings.notices.smtp is not None:
        from certrenew.adapters.notice.smtp import SmtpTransport

        transports.append(SmtpTransport(settings.notices.smtp))
    if settings.notices.webhook is not None:
        from certrenew.adapters.notice.webhook import WebhookTransport

        transports.append(WebhookTransport(settings.notices.webhook))
    return [Outbox(settings.outbox_path(), transports)]
