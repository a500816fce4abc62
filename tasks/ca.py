"""Runbook steps that talk to the CA through its route (certrenew.adapters.ca).

Which route serves a renewal is the CA the service owner named (step 2); the
old certificate is revoked through the route of the CA that issued it (the
inventory's `ca`).
"""

from __future__ import annotations

from certrenew.adapters.ca import AutomaticRoute, CaRoute, CertificateOrder, PersonRoute
from certrenew.pki.csr import csr_names
from certrenew.renewal import CsrRecord, RenewalStart


def certificate_order(start: RenewalStart, csr: CsrRecord) -> CertificateOrder:
    """The order for this renewal: the domain first, then the other names the CSR asks for."""
    names = tuple(dict.fromkeys((start.domain.lower(), *csr_names(csr.csr_pem.encode()))))
    return CertificateOrder(start.domain, names, csr.csr_pem, csr.source)


def is_automatic(route: CaRoute | None) -> bool:
    """A route that files, collects and revokes without a person."""
    return isinstance(route, AutomaticRoute)


def revoke_instructions(route: CaRoute | None, serial: str) -> str:
    """What support staff do with the old certificate, in the words of its CA's route."""
    if isinstance(route, PersonRoute):
        return route.revoke_instructions(serial)
    return (
        f"Revoke the old certificate (serial `{serial}`) at its CA, or decide to let it "
        "expire, so its expiry reminders stop; then say which."
    )
