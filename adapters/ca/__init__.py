"""The CA route seam: how a certificate is requested from one CA, and the old one revoked.

Each CA the service owner may name is reached through one route, chosen by the
owner's answer (or the inventory's `ca`) and configured in its own
`[ca_routes.<CA>]` section. A route is one of two kinds:

- a `PersonRoute`: there is no API (CESICAT's Remedy portal in the runbook), so
  the route tells support staff exactly what to file and what to do at
  revocation time; the flow's forms collect the request number and the file;
- an `AutomaticRoute`: the route talks to the CA itself (ACME): it files the
  request, collects the certificate and revokes the old one, with no person.

Adding a CA is adding one module here with a class of either kind, a `kind`
in certrenew.config, and a line in `adapters/wiring.py`; the contract suite
(`tests/contract/ca_route_contract.py`) says when it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CertificateOrder:
    """What a renewal asks a CA for: a certificate for `names` from this CSR.

    `names` is the domain first, then the other names the certificate must
    cover; `csr_source` is where the CSR also lies (its ticket, or the archive
    folder it came from), for the people who attach it at a portal.
    """

    domain: str
    names: tuple[str, ...]
    csr_pem: str
    csr_source: str


@runtime_checkable
class CaRoute(Protocol):
    """What every route says about itself."""

    @property
    def portal(self) -> str:
        """Where the request is filed, in the words people use (quoted on tickets)."""
        ...

    @property
    def issuers(self) -> tuple[str, ...]:
        """Words one of which the issuer of this CA's certificates names; () when unknown."""
        ...


@runtime_checkable
class PersonRoute(CaRoute, Protocol):
    """A route on which support staff file the request and revoke by hand."""

    def request_instructions(self, order: CertificateOrder) -> str:
        """Markdown telling support staff exactly what to file, with the CSR."""
        ...

    def revoke_instructions(self, serial: str) -> str:
        """Markdown telling support staff where to revoke the old certificate."""
        ...


@runtime_checkable
class AutomaticRoute(CaRoute, Protocol):
    """A route that files, collects and revokes by itself (ACME)."""

    def request(self, order: CertificateOrder) -> str:
        """File the request and see it through to issuance; the CA's reference for it.

        The reference is the request number the tickets and the archive quote;
        `collect` fetches the certificate by it, so a crash in between does not
        file a second request.
        """
        ...

    def collect(self, reference: str) -> bytes:
        """The issued certificate with its chain (PEM), as the CA delivers it."""
        ...

    def revoke(self, certificate_pem: bytes) -> None:
        """Revoke a certificate this route issued, as superseded."""
        ...


def is_automatic(route: CaRoute | None) -> bool:
    """A route that files, collects and revokes without a person."""
    return isinstance(route, AutomaticRoute)
