"""Runbook steps that touch the ticket tracker (Jira, or its local stand-in).

Every ticket is opened with `ensure_ticket` (search by label first) and every
comment carries a step marker and is posted once, so a step repeated after a
crash neither opens a second ticket nor says the same thing twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from cryptography.hazmat.primitives.serialization import Encoding

from certrenew.adapters.tracker import Attachment, NewTicket, ensure_ticket
from certrenew.errors import CertificateError
from certrenew.pki.csr import check_csr, check_key_matches_csr, load_csr
from certrenew.pki.files import classify_file
from certrenew.pki.issued import check_issued_certificate
from certrenew.renewal import (
    ArchiveRecord,
    CsrRecord,
    IssuedRecord,
    KeySource,
    RenewalStart,
)
from certrenew.tasks.context import RenewalContext, renewal_step
from certrenew.templates import comments, render_ticket

T = TypeVar("T")
MARKER = "[certrenew:"


def comment_once(ctx: RenewalContext, key: str, step: str, body: str) -> None:
    """Post `body` on `key` unless a comment of this step is already there."""
    marker = f"{MARKER}{step}]"
    if any(marker in existing for existing in ctx.tracker.comments(key)):
        return
    ctx.tracker.add_comment(key, f"{body}\n\n{marker} {ctx.run_url}".rstrip() + "\n")


def poll(check: Callable[[], T | None], minutes: float, every_seconds: float) -> T | None:
    """Call `check` until it answers or `minutes` pass; a short wait before asking a person."""
    deadline = time.monotonic() + minutes * 60
    while True:
        answer = check()
        if answer is not None or time.monotonic() + every_seconds > deadline:
            return answer
        time.sleep(every_seconds)


def _ticket(ctx: RenewalContext, start: RenewalStart, kind: str, template: str, **extra: object):
    chain = ctx.settings.jira
    project = {
        "csr": chain.csr_project,
        "owner": chain.owner_project,
        "install": chain.install_project,
    }[kind]
    summary, description = render_ticket(
        template,
        domain=start.domain,
        old=start.old,
        renewal_id=start.id,
        run_url=ctx.run_url,
        **extra,
    )
    return ensure_ticket(
        ctx.tracker,
        NewTicket(
            project=project,
            summary=summary,
            description=description,
            label=start.label(kind),
            labels=("certrenew", start.id),
            assignee=start.owner if kind == "owner" else None,
            issue_type=chain.issue_type,
        ),
    )


@renewal_step("open-csr-ticket")
def open_csr_ticket(ctx: RenewalContext, start: RenewalStart) -> str:
    """Step 1: ask the systems team for a CSR and a key."""
    csr, _, _ = ctx.settings.for_renewal()
    return _ticket(ctx, start, "csr", "csr_ticket", csr=csr).key


@renewal_step("open-service-owner-ticket")
def open_service_owner_ticket(ctx: RenewalContext, start: RenewalStart) -> str:
    """Step 2: ask the domain's service owner which CA renews it."""
    _, _, renewal = ctx.settings.for_renewal()
    return _ticket(
        ctx,
        start,
        "owner",
        "owner_ticket",
        cas=renewal.cas,
        current_ca=start.current_ca,
        days_left=start.old.days_left,
    ).key


def _newest_of_kind(
    ctx: RenewalContext, ticket: str, attachments: Iterable[Attachment]
) -> dict[str, tuple[Attachment, bytes]]:
    """The newest attachment of each kind, recognised by content, not by file name."""
    found: dict[str, tuple[Attachment, bytes]] = {}
    for attachment in attachments:
        data = ctx.tracker.download_attachment(ticket, attachment)
        found[classify_file(data)] = (attachment, data)
    return found


def check_csr_and_key(
    ctx: RenewalContext, start: RenewalStart, ticket: str, pasted_csr: str
) -> CsrRecord | str | None:
    """The CSR and key on `ticket` if both are there and good, a problem, or None (not yet)."""
    subject, _, _ = ctx.settings.for_renewal()
    newest = _newest_of_kind(ctx, ticket, ctx.tracker.attachments(ticket))
    key = newest.get("private_key")
    csr_bytes = pasted_csr.encode() if pasted_csr.strip() else None
    if csr_bytes is None and "csr" in newest:
        csr_bytes = newest["csr"][1]
    if key is None or csr_bytes is None:
        return None
    try:
        check_csr(csr_bytes, subject.rules(), start.domain)
        fingerprint = check_key_matches_csr(key[1], csr_bytes)
    except CertificateError as exc:
        return f"{exc}"
    return CsrRecord(
        csr_pem=load_csr(csr_bytes).public_bytes(Encoding.PEM).decode(),
        key=KeySource("ticket", ticket, key[0].filename, key[0].id),
        key_fingerprint=fingerprint,
        source=ticket,
    )


@renewal_step("collect-csr-and-key")
def collect_csr_and_key(
    ctx: RenewalContext, start: RenewalStart, ticket: str, pasted_csr: str, attempt: int
) -> CsrRecord | str:
    """Step 1 (waiting): poll the CSR ticket a while; the record or what a person must fix."""
    _, _, renewal = ctx.settings.for_renewal()
    outcome = poll(
        lambda: check_csr_and_key(ctx, start, ticket, pasted_csr),
        renewal.attachment_poll_minutes,
        renewal.attachment_poll_seconds,
    )
    if isinstance(outcome, CsrRecord):
        comment_once(
            ctx,
            ticket,
            "csr-received",
            comments.csr_received(outcome.key.name, outcome.key_fingerprint),
        )
        return outcome
    if outcome is None:
        return f"{ticket} has no .csr and .key attached yet"
    comment_once(ctx, ticket, f"csr-rejected-{attempt}", comments.csr_rejected(outcome))
    return outcome


@renewal_step("record-ca-choice")
def record_ca_choice(
    ctx: RenewalContext, start: RenewalStart, ticket: str, ca: str, answered_by: str
) -> None:
    comment_once(ctx, ticket, "ca-chosen", comments.ca_chosen(ca, answered_by))


def ca_named_on_ticket(ctx: RenewalContext, ticket: str, cas: list[str]) -> str | None:
    """The CA the owner named in a comment, when exactly one configured CA is named."""
    named = {
        ca
        for comment in ctx.tracker.comments(ticket)
        if MARKER not in comment
        for ca in cas
        if re.search(rf"\b{re.escape(ca)}\b", comment, re.IGNORECASE)
    }
    return named.pop() if len(named) == 1 else None


@renewal_step("record-ca-request")
def record_ca_request(
    ctx: RenewalContext, start: RenewalStart, tickets: list[str], ca: str, number: str, by: str
) -> None:
    _, ca_request, _ = ctx.settings.for_renewal()
    for ticket in tickets:
        comment_once(
            ctx, ticket, "ca-requested", comments.ca_requested(ca, ca_request.portal, number, by)
        )


def check_issued(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    tickets: list[str],
    pasted_cert: str,
    pasted_chain: str,
) -> IssuedRecord | str | None:
    """The CA's certificate from the form or a ticket, validated; else the newest problem."""
    _, _, renewal = ctx.settings.for_renewal()
    candidates: list[tuple[str, bytes]] = []
    if pasted_cert.strip():
        candidates.append(("certificat enganxat al formulari", pasted_cert.encode()))
    for ticket in tickets:
        attachments = list(reversed(ctx.tracker.attachments(ticket)))
        for attachment in attachments:
            data = ctx.tracker.download_attachment(ticket, attachment)
            if classify_file(data) in ("certificate", "pkcs7"):
                candidates.append((f"{attachment.filename} a {ticket}", data))
    problems: list[str] = []
    for source, data in candidates:
        try:
            issued = check_issued_certificate(
                data,
                key_fingerprint=csr.key_fingerprint,
                domain=start.domain,
                max_lifetime_days=renewal.max_lifetime_days,
                chain=pasted_chain.encode() if pasted_chain.strip() else None,
            )
        except CertificateError as exc:
            problems.append(f"{source}: {exc}")
            continue
        return IssuedRecord(
            cert_pem=issued.leaf_pem.decode(),
            chain_pem=issued.chain_pem.decode(),
            serial=issued.facts.serial,
            not_before=issued.facts.not_before,
            not_after=issued.facts.not_after,
            sha256=issued.facts.sha256,
            source=source,
        )
    return problems[0] if problems else None


@renewal_step("collect-certificate")
def collect_certificate(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    tickets: list[str],
    pasted_cert: str,
    pasted_chain: str,
    attempt: int,
) -> IssuedRecord | str:
    """Step 4 (waiting): the validated certificate, or exactly why it cannot be used."""
    _, _, renewal = ctx.settings.for_renewal()
    outcome = poll(
        lambda: check_issued(ctx, start, csr, tickets, pasted_cert, pasted_chain),
        renewal.attachment_poll_minutes,
        renewal.attachment_poll_seconds,
    )
    if isinstance(outcome, IssuedRecord):
        comment_once(
            ctx,
            tickets[0],
            "certificate-received",
            comments.certificate_received(outcome.serial, outcome.not_after, outcome.source),
        )
        return outcome
    if outcome is None:
        return f"no certificate has been pasted or attached to {', '.join(tickets)} yet"
    comment_once(
        ctx, tickets[0], f"certificate-rejected-{attempt}", comments.certificate_rejected(outcome)
    )
    return outcome


@renewal_step("open-install-ticket")
def open_install_ticket(
    ctx: RenewalContext,
    start: RenewalStart,
    related: list[str],
    archived: ArchiveRecord,
    issued: IssuedRecord,
) -> str:
    """Step 6: ask the systems team to install, linked to the earlier tickets."""
    ticket = _ticket(
        ctx,
        start,
        "install",
        "install_ticket",
        archive_location=archived.location,
        files=archived.files,
        new=issued,
        endpoints=start.endpoints or start.files,
        related=related,
        key_protected=archived.key_protected,
        key_passphrase_location=ctx.settings.sharepoint.key_passphrase_hint,
    ).key
    for other in related:
        ctx.tracker.link_tickets(ticket, other, ctx.settings.jira.link_type)
        comment_once(ctx, other, "install-opened", comments.install_opened(ticket))
    return ticket


@renewal_step("comment-verification")
def comment_verification(ctx: RenewalContext, start: RenewalStart, ticket: str, body: str) -> None:
    comment_once(ctx, ticket, "verified", body)


@renewal_step("close-tickets")
def close_tickets(ctx: RenewalContext, start: RenewalStart, tickets: list[str], body: str) -> None:
    """Step 8 (end): say how it ended on every ticket, then close them."""
    for ticket in tickets:
        comment_once(ctx, ticket, "retired", body)
        ctx.tracker.close_ticket(ticket)
