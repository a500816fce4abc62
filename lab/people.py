"""The people of the runbook, played by code for the demo and the tests.

The systems team, the service owner, support staff and the CA each act only
through what a person would use: the ticket tracker and the run's resume form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from certrenew.adapters.wiring import build_tracker
from certrenew.config import Settings
from certrenew.errors import CertRenewError
from certrenew.lab.tls import LeafCertificate, LocalCA, TLSServer, build_csr
from certrenew.tasks.forms import Question, question_of


@dataclass
class DemoPeople:
    """The systems team, the service owner, support staff and the CA, played by code.

    Each acts only through what a person would use: the ticket tracker and the
    run's resume form.
    """

    settings: Settings
    ca: LocalCA
    server: TLSServer
    domain: str
    log: Callable[[str], None]
    generated: dict[str, bytes] = field(default_factory=dict)

    def answer(self, pause_key: str, renewal: str) -> dict[str, Any]:
        """The run input that answers the question `pause_key` asks (see forms.Question)."""
        tracker = build_tracker(self.settings)
        kind = question_of(pause_key)
        if kind == Question.CSR_REUSE:
            return {"choice": "Ask the systems team for a new CSR"}
        if kind == Question.CSR:
            assert self.settings.csr
            ticket = tracker.find_tickets(f"{renewal}-csr")[0].key
            csr_pem, key_pem = build_csr(self.settings.csr, self.domain)
            self.generated = {"csr": csr_pem, "key": key_pem}
            tracker.add_attachment(ticket, f"{self.domain}.csr", csr_pem)
            tracker.add_attachment(ticket, f"{self.domain}.key", key_pem)
            self.log(f"systems team: attached {self.domain}.csr and .key to {ticket}")
            return {}
        if kind == Question.CA_CHOICE:
            owner = tracker.find_tickets(f"{renewal}-owner")[0].key
            tracker.add_comment(owner, "Renoveu-lo amb CESICAT, com l'any passat.")
            self.log(f"service owner: answered CESICAT on {owner}")
            return {"ca": "CESICAT", "answered_by": "Suport Tècnic (demo)"}
        if kind == Question.CA_REQUEST:
            self.log("support staff: filed the request in the CA portal, number REQ000123")
            return {"request_number": "REQ000123", "requested_by": "Suport Tècnic (demo)"}
        if kind == Question.CERTIFICATE:
            ticket = tracker.find_tickets(f"{renewal}-csr")[0].key
            crt = self.ca.sign_csr(self.generated["csr"], days=180)
            self.generated["crt"] = crt
            tracker.add_attachment(ticket, f"{self.domain}.crt", crt)
            self.log(f"CA: signed the CSR; support staff attached the .crt to {ticket}")
            return {}
        if kind == Question.INSTALL:
            self.server.install(
                LeafCertificate.from_pem(
                    self.generated["crt"] + self.ca.cert_pem, self.generated["key"]
                )
            )
            self.log(f"systems team: installed the new certificate on {self.server.address}")
            return {"action": "Check the endpoints again"}
        if kind == Question.RETIRE:
            self.log("support staff: revoked the old certificate at the CA")
            return {"outcome": "Revoked at the CA", "confirmed_by": "Suport Tècnic (demo)"}
        raise CertRenewError(f"the demo does not know how to answer the step '{pause_key}'")
