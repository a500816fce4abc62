"""The people of the runbook, played by code for the demo and the tests.

The systems team, the service owner, support staff and the CA each act only
through what a person would use: the ticket tracker and the run's resume form.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certrenew.adapters.tracker import TicketTracker
from certrenew.adapters.wiring import build_tracker
from certrenew.config import Settings
from certrenew.errors import CertRenewError
from certrenew.lab.tls import LeafCertificate, LocalCA, TLSServer, build_csr
from certrenew.naming import renewal_file_names
from certrenew.rules import step_marker
from certrenew.tasks.forms import Question, question_of

# The login support staff answer under in the demo and the tests (no roles configured).
SUPPORT = "suport.tecnic"


@dataclass
class DemoPeople:
    """The systems team, the service owner, support staff and the CA, played by code.

    Each acts only through what a person would use: the ticket tracker and the
    run's resume form. `answer` plays support staff too; `work_tickets` plays
    only the people who work in tickets, leaving the forms to a person.
    """

    settings: Settings
    ca: LocalCA
    server: TLSServer
    domain: str
    log: Callable[[str], None]
    generated: dict[str, bytes] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def tracker(self) -> TicketTracker:
        return build_tracker(self.settings)

    def ticket_key(self, tracker: TicketTracker, label: str) -> str:
        """The ticket a person finds by its label, looking again while Jira's search lags."""
        patience = self.settings.jira.search_lag_seconds if self.settings.tracker == "jira" else 0
        deadline = time.monotonic() + patience
        while True:
            found = tracker.find_tickets(label)
            if found:
                return found[0].key
            if time.monotonic() >= deadline:
                raise CertRenewError(f"no ticket labelled {label} in the tracker")
            time.sleep(0.5)

    def attach_csr_and_key(self, tracker: TicketTracker, ticket: str) -> None:
        """The systems team generates a CSR and key and attaches both to the CSR ticket."""
        assert self.settings.csr
        csr_pem, key_pem = build_csr(self.settings.csr, self.domain)
        self.generated = {"csr": csr_pem, "key": key_pem}
        tracker.add_attachment(ticket, f"{self.domain}.csr", csr_pem)
        tracker.add_attachment(ticket, f"{self.domain}.key", key_pem)
        self.log(f"systems team: attached {self.domain}.csr and .key to {ticket}")

    def name_the_ca(self, tracker: TicketTracker, ticket: str) -> None:
        tracker.add_comment(ticket, "Renoveu-lo amb CESICAT, com l'any passat.")
        self.log(f"service owner: answered CESICAT on {ticket}")

    def sign(self) -> bytes:
        """The CA signs the systems team's CSR."""
        crt = self.ca.sign_csr(self.generated["csr"], days=180)
        self.generated["crt"] = crt
        return crt

    def install(self) -> None:
        self.server.install(
            LeafCertificate.from_pem(
                self.generated["crt"] + self.ca.cert_pem, self.generated["key"]
            )
        )
        self.log(f"systems team: installed the new certificate on {self.server.address}")

    def answer(self, pause_key: str, renewal: str) -> dict[str, Any]:
        """The run input that answers the question `pause_key` asks (see forms.Question)."""
        tracker = self.tracker()
        kind = question_of(pause_key)
        if kind == Question.CSR_REUSE:
            return {"choice": "Ask the systems team for a new CSR", "answered_by": SUPPORT}
        if kind == Question.CSR:
            self.attach_csr_and_key(tracker, self.ticket_key(tracker, f"{renewal}-csr"))
            return {"answered_by": SUPPORT}
        if kind == Question.CA_CHOICE:
            self.name_the_ca(tracker, self.ticket_key(tracker, f"{renewal}-owner"))
            return {"ca": "CESICAT", "answered_by": SUPPORT}
        if kind == Question.CA_REQUEST:
            self.log("support staff: filed the request in the CA portal, number REQ000123")
            return {"request_number": "REQ000123", "requested_by": SUPPORT}
        if kind == Question.CERTIFICATE:
            ticket = self.ticket_key(tracker, f"{renewal}-csr")
            tracker.add_attachment(ticket, f"{self.domain}.crt", self.sign())
            self.log(f"CA: signed the CSR; support staff attached the .crt to {ticket}")
            return {"answered_by": SUPPORT}
        if kind == Question.INSTALL:
            self.install()
            return {"action": "Check the endpoints again", "confirmed_by": SUPPORT}
        if kind == Question.RETIRE:
            self.log("support staff: revoked the old certificate at the CA")
            return {"outcome": "Revoked at the CA", "confirmed_by": SUPPORT}
        raise CertRenewError(f"the demo does not know how to answer the step '{pause_key}'")

    def work_tickets(self, renewal: str, mailbox: Path) -> None:
        """One round of the ticket people's work: each acts once, when their ticket asks.

        The systems team attaches a CSR and key to the CSR ticket, the service
        owner names the CA on theirs, the CA mails the certificate (to a file in
        `mailbox`) once the request is filed, and the systems team installs it
        once the install ticket is open.
        """
        tracker = self.tracker()

        def ticket(kind: str) -> str | None:
            found = tracker.find_tickets(f"{renewal}-{kind}")
            return found[0].key if found else None

        csr, owner, install = ticket("csr"), ticket("owner"), ticket("install")
        if csr and "csr" not in self.done:
            self.attach_csr_and_key(tracker, csr)
            self.done.add("csr")
        if owner and "owner" not in self.done:
            self.name_the_ca(tracker, owner)
            self.done.add("owner")
        requested = owner and any(step_marker("ca-requested") in c for c in tracker.comments(owner))
        if requested and "crt" not in self.done and "csr" in self.done:
            mailbox.mkdir(parents=True, exist_ok=True)
            mailed = mailbox / renewal_file_names(self.domain)["crt"]
            mailed.write_bytes(self.sign())
            self.done.add("crt")
            self.log(f"CA: the new certificate arrived by mail; it is saved as {mailed}")
        if install and "install" not in self.done and "crt" in self.done:
            self.install()
            self.done.add("install")
