"""What one renewal knows as it moves through the runbook.

These records are what the flow's steps return, and Prefect persists them so a
resumed run picks up where it was. They therefore hold no secret: the private
key is referred to by where it lives (a ticket attachment or an archived file)
and by its public-key fingerprint, never by its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from certrenew.naming import renewal_slug


def renewal_id(domain: str, old_serial: str) -> str:
    """Stable per (domain, certificate being replaced): starting twice resumes, not restarts.

    Safe as a Jira label: lower-case letters, digits, dots and dashes only.
    """
    return f"certrenew-{renewal_slug(domain)}-{old_serial.lower()[:16]}"


@dataclass(frozen=True)
class ServedCertificate:
    """The certificate in service when the renewal started (step 0)."""

    serial: str
    not_after: datetime
    sha256: str
    subject_cn: str | None
    days_left: int
    sans: tuple[str, ...] = ()  # the names a renewal orders again where the route makes the CSR


@dataclass(frozen=True)
class RenewalStart:
    """Step 0's verdict: which certificate is being replaced, and where it is served."""

    id: str
    name: str
    domain: str
    owner: str | None
    current_ca: str | None
    old: ServedCertificate
    endpoints: tuple[str, ...]
    files: tuple[str, ...]
    already_renewed: bool = False
    note: str = ""
    certificate_kind: str | None = None  # inventory: device, application, seal, ...

    def label(self, kind: str) -> str:
        """The label that finds this renewal's ticket of `kind` again."""
        return f"{self.id}-{kind}"


@dataclass(frozen=True)
class KeySource:
    """Where the private key is, without holding it."""

    kind: Literal["ticket", "archive"]
    location: str  # ticket key, or archive folder
    name: str  # attachment file name, or archived file name
    attachment_id: str = ""


@dataclass(frozen=True)
class CsrRecord:
    csr_pem: str
    key: KeySource
    key_fingerprint: str
    source: str  # e.g. "SIS-12" or "reused from CERTIFICATS/CDS/CESICAT/2025/x"


@dataclass(frozen=True)
class CaChoice:
    ca: str
    answered_by: str


@dataclass(frozen=True)
class CaRequest:
    ca: str
    request_number: str
    requested_by: str
    approved_by: str = ""  # the manager who decided on an urgent request
    approved_at: str = ""
    urgent: bool = False  # the urgent channel, approved; False also when urgency was refused


@dataclass(frozen=True)
class IssuedRecord:
    cert_pem: str
    chain_pem: str
    serial: str
    not_before: datetime
    not_after: datetime
    sha256: str
    source: str


@dataclass(frozen=True)
class ArchiveRecord:
    folder: str
    location: str
    files: tuple[str, ...]
    key_protected: bool = False


@dataclass(frozen=True)
class DeliveredP12:
    """A `.p12` accepted, archived, its password in the password safe (none of it here)."""

    issued: IssuedRecord
    archived: ArchiveRecord
    password_safe: str  # where the password is, in people's words


@dataclass(frozen=True)
class Verification:
    verified: bool
    served_new: tuple[str, ...] = ()
    still_old: tuple[str, ...] = ()
    confirmed_by: str = ""


@dataclass(frozen=True)
class Retirement:
    retired: bool
    confirmed_by: str
    retired_at: str
    revoked: bool = False  # revoked at the CA (a revocation notice went out), or only retired


@dataclass(frozen=True)
class RenewalTickets:
    """The renewal's tickets by role, as the runbook names them.

    Without a CSR ticket (a previous CSR was reused) the service owner's ticket
    is where the certificate's arrival and the archive are recorded.
    """

    owner: str
    csr: str | None = None
    install: str | None = None

    @property
    def main(self) -> str:
        """The ticket the renewal's files hang from: the CSR ticket, else the owner's."""
        return self.csr or self.owner

    def before_install(self) -> list[str]:
        """The tickets opened before the certificate was issued, in runbook order."""
        return [key for key in (self.csr, self.owner) if key]

    def every(self) -> list[str]:
        return [key for key in (self.csr, self.owner, self.install) if key]

    def by_role(self) -> dict[str, str]:
        """`{"csr": ..., "service_owner": ..., "install": ...}` for the archive manifest."""
        roles = {"csr": self.csr, "service_owner": self.owner, "install": self.install}
        return {role: key for role, key in roles.items() if key}
