"""The runbook's CA route: a person files the request in the CA's web portal."""

from __future__ import annotations

from certrenew.adapters.ca import CertificateOrder
from certrenew.config import CaRequestSettings
from certrenew.naming import renewal_file_names
from certrenew.templates import render


class PortalRoute:
    """PersonRoute for a CA reached through a web form (CESICAT via Remedy in the runbook)."""

    def __init__(self, form: CaRequestSettings) -> None:
        self.form = form

    @property
    def portal(self) -> str:
        return self.form.portal

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(self.form.issuers)

    def request_instructions(self, order: CertificateOrder) -> str:
        domain = order.domain
        fields = [
            (name, value.replace("{domain}", domain)) for name, value in self.form.fields.items()
        ]
        return render(
            "ca_request",
            ca_request=self.form,
            fields=fields,
            csr_file=renewal_file_names(domain)["csr"],
            csr_source=order.csr_source,
            csr_pem=order.csr_pem.strip(),
        )

    def revoke_instructions(self, serial: str) -> str:
        return (
            f"Revoke the old certificate (serial `{serial}`) in **{self.form.portal}**, "
            "or decide to let it expire, so its expiry reminders stop; then say which."
        )
