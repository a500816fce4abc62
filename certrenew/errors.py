"""One small exception hierarchy whose messages a person can act on.

Every message says what is wrong and what to do about it. Messages never carry
secret material: callers pass names and identifiers, never key bytes, tokens or
passwords.
"""


class CertRenewError(Exception):
    """Base of every error the CLI prints without a traceback."""


class ConfigError(CertRenewError):
    """The configuration file or environment is wrong."""


class InventoryError(CertRenewError):
    """The inventory file is wrong; the message names file, line and field."""


class CertificateError(CertRenewError):
    """A certificate, CSR or key is unreadable or does not meet the rules."""


class TrackerError(CertRenewError):
    """The ticket tracker refused or failed an operation."""


class TicketNotFound(TrackerError):
    """A ticket the renewal recorded no longer exists (deleted by hand?)."""


class ArchiveError(CertRenewError):
    """The archive refused or failed an operation."""


class ArchiveConflict(ArchiveError):
    """A different file already sits where the renewal wants to store one."""


class AuthenticationError(CertRenewError):
    """Credentials were refused; the message names the setting to fix."""


class ServiceUnavailable(CertRenewError):
    """An outside system is down or throttling; the step can be retried later."""
