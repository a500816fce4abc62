"""The CA route seam: how a certificate is requested from one CA.

Today every CA is reached the way the runbook describes for CESICAT: support
staff file the request in the CA's web portal with values prepared for them.
A route says what to show them; routes that talk to a CA themselves (ACME, an
API) are further implementations of the same small interface.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CaRoute(Protocol):
    """One way of asking a CA for a certificate."""

    @property
    def portal(self) -> str:
        """Where the request is filed, in the words people use (quoted on tickets)."""
        ...

    def request_instructions(self, domain: str, csr_pem: str, csr_source: str) -> str:
        """Markdown telling support staff exactly what to file; `csr_source` is where the
        CSR also lies (its ticket, or the archive folder it was reused from)."""
        ...
