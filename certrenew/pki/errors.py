"""The one error the certificate library raises.

certrenew.pki imports nothing of ours, so its error cannot derive from the
project's CertRenewError. It is a ValueError instead, which is what it is to any
other caller: bytes or values that do not meet the rules. certrenew.errors
re-exports it and lists it in PERSON_FIXABLE beside CertRenewError.
"""

from __future__ import annotations


class CertificateError(ValueError):
    """A certificate, CSR or key is unreadable or does not meet the rules.

    The message says what is wrong and what to ask for, so a person can act on
    it without a traceback. Messages never carry key material: only file kinds,
    names, sizes and public-key fingerprints.
    """
