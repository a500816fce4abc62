"""What every CA route must do, whichever kind it is.

A person route must tell the person who files the request everything (the
domain, the CSR, where the CSR lies, where to file it) and say where to revoke;
an automatic route must issue a certificate for the order's names from the
order's CSR, hand it back by its reference, and revoke it. Subclasses provide a
`route` fixture, and `order` when the route needs a real CSR.
"""

from __future__ import annotations

import pytest
from cryptography import x509

from certrenew.adapters.ca import AutomaticRoute, CaRoute, CertificateOrder, PersonRoute
from certrenew.pki.certs import certificate_facts
from certrenew.pki.issued import load_certificates

DOMAIN = "*.example.cat"
CSR_PEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBfake\n-----END CERTIFICATE REQUEST-----\n"
SOURCE = "CERTIFICATS/CDS/CESICAT/2025/wildcard.example.cat"


class CaRouteContract:
    """Every route; subclasses provide `route` (and `order` for automatic routes)."""

    @pytest.fixture
    def order(self) -> CertificateOrder:
        return CertificateOrder(DOMAIN, (DOMAIN,), CSR_PEM, SOURCE)

    def test_the_route_names_where_the_request_is_filed(self, route: CaRoute) -> None:
        assert route.portal.strip()

    def test_the_route_is_of_one_kind(self, route: CaRoute) -> None:
        assert isinstance(route, PersonRoute) != isinstance(route, AutomaticRoute)


class PersonRouteContract(CaRouteContract):
    def test_instructions_carry_the_domain_the_csr_and_where_it_lies(
        self, route: PersonRoute, order: CertificateOrder
    ) -> None:
        text = route.request_instructions(order)
        assert order.domain in text
        assert route.portal in text
        if order.csr_pem:
            assert order.csr_pem.strip().splitlines()[1] in text
            assert order.csr_source in text
        else:  # the CA makes the key: no CSR is asked for
            assert "No CSR" in text

    def test_file_names_in_instructions_follow_the_naming_rule(
        self, route: PersonRoute, order: CertificateOrder
    ) -> None:
        text = route.request_instructions(order)
        assert "*.example.cat.csr" not in text

    def test_revocation_names_the_serial_and_the_portal(self, route: PersonRoute) -> None:
        text = route.revoke_instructions("0A1B2C")
        assert "0A1B2C" in text
        assert route.portal in text


class AutomaticRouteContract(CaRouteContract):
    """Subclasses also provide `revoked(serial) -> bool`, read from the CA itself."""

    def revoked(self, serial: str) -> bool:
        raise NotImplementedError

    def test_issues_for_the_orders_names_and_key_then_revokes(
        self, route: AutomaticRoute, order: CertificateOrder
    ) -> None:
        reference = route.request(order)
        assert reference
        delivered = route.collect(reference)
        assert route.collect(reference) == delivered  # collecting again fetches, not reorders
        leaf, *chain = load_certificates(delivered, "the delivered certificate")
        facts = certificate_facts(leaf)
        assert facts.sans is not None and set(order.names) <= set(facts.sans)
        csr = x509.load_pem_x509_csr(order.csr_pem.encode())
        assert x509.load_der_x509_certificate(leaf).public_key() == csr.public_key()
        assert chain, "the chain comes with the leaf"
        assert not self.revoked(facts.serial)
        route.revoke(delivered)
        assert self.revoked(facts.serial)
