"""EACAT/Firmaprofessional: the CA makes the key and hands out a `.p12` with a password.

A person requests the certificate at the subscriber portal with the values
shown (no CSR: the CA generates the key), downloads the `.p12` and gives it to
the flow with its password. Where the file is archived depends on the
certificate's kind: device and application certificates under `CDA`, seals
under `SEGELL` in the runbook (configuration: `folders`).
"""

from __future__ import annotations

from certrenew.adapters.ca.portal import PortalRoute
from certrenew.config import P12RouteSettings
from certrenew.errors import CaError


class P12Route(PortalRoute):
    """PersonRoute whose certificate comes back as a `.p12` with its key.

    Requested like at any portal (the form's values, shown ready to copy); the
    order carries no CSR, so the instructions say to download the `.p12` instead.
    """

    brings_key = True  # no CSR from the systems team on this route

    def __init__(self, settings: P12RouteSettings) -> None:
        super().__init__(settings)
        self.settings = settings

    def max_lifetime_days(self, default: int) -> int:
        """Device and seal certificates live longer than TLS ones: the route may say how long."""
        return self.settings.max_lifetime_days or default

    def archive_root(self, certificate_kind: str | None) -> str:
        """The archive root folder of a certificate kind (`CERTIFICATS/SEGELL` for a seal)."""
        folders = self.settings.folders
        if certificate_kind not in folders:
            raise CaError(
                f"the inventory gives this certificate the kind {certificate_kind!r}, which has "
                f"no archive folder on this route: set certificate_kind to one of "
                f"{', '.join(sorted(folders))} in the inventory, or add it to the route's "
                "folders"
            )
        return folders[certificate_kind]
