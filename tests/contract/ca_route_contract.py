"""What every CA route must tell the person who requests the certificate."""

from __future__ import annotations

from certrenew.adapters.ca import CaRoute

DOMAIN = "*.example.cat"
CSR_PEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBfake\n-----END CERTIFICATE REQUEST-----\n"
SOURCE = "CERTIFICATS/CDS/CESICAT/2025/wildcard.example.cat"


class CaRouteContract:
    """Subclasses provide a `route` fixture."""

    def test_the_route_names_where_the_request_is_filed(self, route: CaRoute) -> None:
        assert route.portal.strip()

    def test_instructions_carry_the_domain_the_csr_and_where_it_lies(
        self, route: CaRoute
    ) -> None:
        text = route.request_instructions(DOMAIN, CSR_PEM, SOURCE)
        assert DOMAIN in text
        assert "MIIBfake" in text
        assert SOURCE in text
        assert route.portal in text

    def test_file_names_in_instructions_follow_the_naming_rule(self, route: CaRoute) -> None:
        text = route.request_instructions(DOMAIN, CSR_PEM, SOURCE)
        assert "*.example.cat.csr" not in text
