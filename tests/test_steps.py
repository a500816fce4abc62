"""Runbook steps as plain functions: the composition point wires local adapters, no Prefect.

Each step is called through `.fn`, with a context built by the same function
production uses (`renewal_context`) and adapters handed in by the test.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import SecretStr

from certrenew.adapters.archive.local import LocalArchive
from certrenew.adapters.notice import Delivery, Notice
from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.adapters.tracker.local import LocalTracker
from certrenew.adapters.wiring import ArchiveSetup, RenewalContext, renewal_context
from certrenew.config import load_settings
from certrenew.lab.jira_server import JiraServer
from certrenew.lab.tls import LocalCA, build_csr
from certrenew.pki.certs import serial_hex
from certrenew.renewal import RenewalTickets
from certrenew.tasks.archiving import archive_artifacts
from certrenew.tasks.people import Role, check_answerer
from certrenew.tasks.tickets import (
    collect_certificate,
    collect_csr_and_key,
    open_csr_ticket,
    open_service_owner_ticket,
)
from tests.fixtures_renewal import example_config, renewal_start

WILDCARD = "*.example.cat"


class RecordingChannel:
    """A notice channel that keeps what it was given."""

    def __init__(self) -> None:
        self.delivered: list[Notice] = []

    def deliver(self, notice: Notice) -> Delivery:
        self.delivered.append(notice)
        return Delivery(notice.id)

    def retry_pending(self) -> list[Delivery]:
        return []


@pytest.fixture
def ctx(tmp_path: Path) -> RenewalContext:
    config = example_config(
        tmp_path / "certrenew.toml",
        data_dir=str(tmp_path / "data"),
        tickets={"labels": ["certificats"]},
        renewal={"attachment_poll_minutes": 0},
    )
    return renewal_context(
        load_settings(config),
        tracker=LocalTracker(tmp_path / "tickets.sqlite3"),
        archive=ArchiveSetup(LocalArchive(tmp_path / "archive"), "CERTIFICATS/CDS"),
        notice_channels=[RecordingChannel()],
    )




def test_the_context_uses_the_adapters_handed_in(ctx: RenewalContext) -> None:
    assert isinstance(ctx.tracker, LocalTracker)
    assert isinstance(ctx.notice_channels[0], RecordingChannel)
    assert set(ctx.ca_routes) == set(ctx.renewal.cas)
    assert ctx.ca_route("CESICAT").portal == "Remedy (CTTI)"


def test_configured_labels_go_on_every_ticket(ctx: RenewalContext) -> None:
    start = renewal_start("seu.example.cat", "wild")
    key = open_csr_ticket.fn(ctx, start)
    ticket = ctx.tracker.get_ticket(key)
    assert ticket.labels[0] == start.label("csr")
    assert "certificats" in ticket.labels
    assert [t.key for t in ctx.tracker.find_tickets("certificats")] == [key]
    assert key.startswith(f"{ctx.chain.csr_project}-")


def test_a_wildcard_renewal_is_archived_under_a_name_sharepoint_accepts(
    ctx: RenewalContext,
) -> None:
    """`*.example.cat` is stored in `.../wildcard.example.cat/wildcard.example.cat.crt`."""
    start = renewal_start(WILDCARD, "wild")
    ca = LocalCA("steps test CA")
    ticket = open_csr_ticket.fn(ctx, start)
    csr_pem, key_pem = build_csr(ctx.subject.rules(), WILDCARD)
    ctx.tracker.add_attachment(ticket, "wildcard.csr", csr_pem)
    ctx.tracker.add_attachment(ticket, "wildcard.key", key_pem)
    csr = collect_csr_and_key.fn(ctx, start, ticket, {}, 1)
    assert not isinstance(csr, str), csr
    crt = ca.sign_csr(csr_pem, days=90)
    tickets = RenewalTickets(owner=open_service_owner_ticket.fn(ctx, start), csr=ticket)
    issued = collect_certificate.fn(ctx, start, csr, tickets, {"certificate_pem": crt.decode()}, 1)
    assert not isinstance(issued, str), issued

    archived = archive_artifacts.fn(ctx, start, csr, issued, "CESICAT", tickets)

    year = issued.not_before.year
    assert archived.folder == f"CERTIFICATS/CDS/CESICAT/{year}/wildcard.example.cat"
    assert "*" not in archived.location
    stored = {f.name for f in ctx.archive.archive.list_files(archived.folder)}
    assert {"wildcard.example.cat.crt", "wildcard.example.cat.key"} <= stored
    expected = serial_hex(x509.load_pem_x509_certificate(crt).serial_number)
    assert issued.serial == expected


def test_archiving_again_after_the_key_left_the_ticket_reads_the_encrypted_key_back(
    ctx: RenewalContext,
) -> None:
    """The step killed after it took the .key off the ticket (kill point
    after:delete_attachment:.key) runs again: the key is in the archive, encrypted."""
    protected = replace(
        ctx.archive, key_passphrase=SecretStr("passphrase-from-the-safe"), key_passphrase_hint="x"
    )
    ctx = replace(ctx, archive=protected)
    start = renewal_start("seu.example.cat", "wild")
    ticket = open_csr_ticket.fn(ctx, start)
    csr_pem, key_pem = build_csr(ctx.subject.rules(), start.domain)
    ctx.tracker.add_attachment(ticket, "seu.csr", csr_pem)
    ctx.tracker.add_attachment(ticket, "seu.key", key_pem)
    csr = collect_csr_and_key.fn(ctx, start, ticket, {}, 1)
    assert not isinstance(csr, str), csr
    crt = LocalCA("steps test CA").sign_csr(csr_pem, days=90).decode()
    tickets = RenewalTickets(owner=open_service_owner_ticket.fn(ctx, start), csr=ticket)
    issued = collect_certificate.fn(ctx, start, csr, tickets, {"certificate_pem": crt}, 1)
    assert not isinstance(issued, str), issued

    first = archive_artifacts.fn(ctx, start, csr, issued, "CESICAT", tickets)
    assert not [a for a in ctx.tracker.attachments(ticket) if a.filename == "seu.key"]
    stored = {
        f.name: ctx.archive.archive.read_file(first.folder, f.name)
        for f in ctx.archive.archive.list_files(first.folder)
    }
    again = archive_artifacts.fn(ctx, start, csr, issued, "CESICAT", tickets)

    assert again == first
    assert {
        f.name: ctx.archive.archive.read_file(first.folder, f.name)
        for f in ctx.archive.archive.list_files(first.folder)
    } == stored


def test_each_attempt_of_a_step_waits_under_its_own_key(ctx: RenewalContext) -> None:
    """A wait answered during attempt 1 must not answer attempt 2's wait at once."""
    start = renewal_start("seu.example.cat", "wild")
    tickets = RenewalTickets(owner="ST-1", csr="SIS-1")
    first = collect_certificate.wait_key(1, ctx, start, None, tickets, {}, 1)
    second = collect_certificate.wait_key(1, ctx, start, None, tickets, {}, attempt=2)
    assert first == "wait-collect-certificate-1-1"
    assert second == "wait-collect-certificate-2-1"
    assert open_csr_ticket.wait_key(3, ctx, start) == "wait-open-csr-ticket-3"


def test_a_member_of_the_role_unknown_to_jira_is_refused_and_the_refusal_is_on_the_ticket(
    tmp_path: Path, jira_server: JiraServer, jira_tracker: JiraTracker
) -> None:
    config = example_config(
        tmp_path / "certrenew.toml",
        data_dir=str(tmp_path / "data"),
        roles={"certificate_managers": ["anna", "left-last-year"]},
    )
    jira_server.users |= {"anna", "left-last-year"}
    jira_server.inactive_users.add("left-last-year")
    ctx = renewal_context(
        load_settings(config),
        tracker=jira_tracker,
        archive=ArchiveSetup(LocalArchive(tmp_path / "archive"), "CERTIFICATS/CDS"),
        notice_channels=[],
    )
    start = renewal_start("roles.example.cat", "wild")
    owner = open_service_owner_ticket.fn(ctx, start)

    taken = check_answerer.fn(ctx, start, "anna", Role.CERTIFICATE_MANAGERS, "retire")
    assert taken.refusal is None and taken.at.endswith("UTC")
    refusal = check_answerer.fn(
        ctx, start, "left-last-year", Role.CERTIFICATE_MANAGERS, "retire-refused-1"
    ).refusal
    assert refusal == "'left-last-year' is not an active user of the ticket tracker"
    outsider = check_answerer.fn(ctx, start, "mallory", Role.WORKFLOW_MANAGERS, "urgent-approval")
    assert outsider.refusal is None  # no workflow managers configured: anyone may approve
    said = [c for c in ctx.tracker.comments(owner) if "[certrenew:refused-" in c]
    assert len(said) == 1 and "left-last-year" in said[0] and "retire-refused-1" in said[0]
