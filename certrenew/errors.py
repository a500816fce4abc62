"""One small exception hierarchy whose messages a person can act on.

Every message says what is wrong and what to do about it. Messages never carry
secret material: callers pass names and identifiers, never key bytes, tokens or
passwords.

CertificateError is the exception: it belongs to certrenew.pki, which imports
nothing of ours, so it is a ValueError and not a CertRenewError. It is
re-exported here so the project still has one place to import errors from;
catch PERSON_FIXABLE where a person should see the message.
"""

from __future__ import annotations

from certrenew.pki.errors import CertificateError

__all__ = [
    "PERSON_FIXABLE",
    "ArchiveConflict",
    "ArchiveError",
    "AttachmentTooLarge",
    "AuthenticationError",
    "CaError",
    "CertRenewError",
    "CertificateError",
    "ConfigError",
    "InventoryError",
    "NothingServed",
    "ProbeError",
    "ServiceUnavailable",
    "TicketNotFound",
    "TrackerError",
    "Transient",
]


class CertRenewError(Exception):
    """Base of the project's errors; the CLI prints them without a traceback (PERSON_FIXABLE)."""


class ConfigError(CertRenewError):
    """The configuration file or environment is wrong."""


class InventoryError(CertRenewError):
    """The inventory file is wrong; the message names file, line and field."""


class TrackerError(CertRenewError):
    """The ticket tracker refused or failed an operation."""


class TicketNotFound(TrackerError):
    """A ticket the renewal recorded no longer exists (deleted by hand?)."""


class AttachmentTooLarge(TrackerError):
    """An attachment above the configured size: refused before (or while) it is read."""


class ArchiveError(CertRenewError):
    """The archive refused or failed an operation."""


class ArchiveConflict(ArchiveError):
    """A different file already sits where the renewal wants to store one."""


class AuthenticationError(CertRenewError):
    """Credentials were refused; the message names the setting to fix."""


class ServiceUnavailable(CertRenewError):
    """An outside system is down or throttling; the step can be retried later."""


class CaError(CertRenewError):
    """The CA refused or failed a request made through its route (ACME)."""


class ProbeError(CertRenewError):
    """A scan target could not be checked; the message is for the person reading the scan."""


class NothingServed(CertRenewError):
    """No endpoint or file of a certificate could be read: a person has to look."""


class Transient(CertRenewError):
    """A failed attempt worth repeating, with the server's own wait when it named one.

    An exception so that a call can raise it for an outcome its library does not
    treat as a failure (a 503 answer); a classifier returns one for library
    exceptions instead. `reason` goes into messages, so it carries status codes
    and exception class names, never request text.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# Errors whose message is the whole answer: the CLI catches this tuple and prints
# the message without a traceback. CertRenewError alone misses CertificateError.
PERSON_FIXABLE: tuple[type[Exception], ...] = (CertRenewError, CertificateError)
