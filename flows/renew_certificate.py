"""The renewal runbook (RUNBOOK.md, steps 0-8) as one resumable flow.

Read top to bottom, `renew_certificate` is the runbook's step table. Every
human step suspends the run; on resume Prefect runs this function again from
the top, every finished step returns its stored result, and every question
already answered returns its answer, so the run continues exactly where it
stopped. A step whose outside system fails waits for a person instead of
failing the run (certrenew.tasks.context).

The service-owner ticket is opened right after the CSR ticket, before waiting
for either answer: both questions take days, and asking them together saves
those days without changing what is asked.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count
from typing import Any

from prefect import flow

from certrenew.adapters.wiring import RenewalContext
from certrenew.renewal import (
    CaChoice,
    CaRequest,
    CsrRecord,
    IssuedRecord,
    RenewalStart,
    RenewalTickets,
    Retirement,
    Verification,
)
from certrenew.tasks import forms
from certrenew.tasks.archiving import archive_artifacts, find_previous_csr
from certrenew.tasks.context import (
    RENEWAL_FLOW,
    context_for_this_run,
    label_this_run,
    other_active_run,
)
from certrenew.tasks.endpoints import confirm_expiry, now_text, verify_served_certificate
from certrenew.tasks.forms import Question
from certrenew.tasks.notices import send_notice
from certrenew.tasks.tickets import (
    close_tickets,
    collect_certificate,
    collect_csr_and_key,
    comment_verification,
    open_csr_ticket,
    open_install_ticket,
    open_service_owner_ticket,
    read_ca_answer,
    record_ca_choice,
    record_ca_request,
    record_csr_reuse,
    record_urgent_decision,
)
from certrenew.templates import comments


@flow(name=RENEWAL_FLOW, persist_result=True, log_prints=False)
def renew_certificate(
    name: str, config: str | None = None, force: bool = False, urgent: bool = False
) -> dict[str, Any]:
    """Renew the inventory certificate `name` (or domain), from detection to retirement."""
    ctx = context_for_this_run(config)
    start = confirm_expiry(ctx, name, force)  # step 0
    if start.already_renewed:
        return {"domain": start.domain, "renewal": start.id, "stopped": start.note}
    label_this_run(start.id)
    if other := other_active_run(start.name, ctx):
        return {"domain": start.domain, "renewal": start.id, "stopped": f"in progress: {other}"}

    reused = offer_csr_reuse(ctx, start)
    csr_ticket = None if reused else open_csr_ticket(ctx, start)  # step 1
    tickets = RenewalTickets(owner=open_service_owner_ticket(ctx, start), csr=csr_ticket)  # 2
    if reused:
        record_csr_reuse(ctx, start, tickets.owner, reused.source)
    csr = reused or wait_for_csr_and_key(ctx, start, tickets.main)  # step 1, answered
    ca = wait_for_ca_choice(ctx, start, tickets.owner)  # step 2, answered
    request = request_certificate_from_ca(ctx, start, csr, ca, tickets, urgent)  # step 3
    issued = wait_for_certificate(ctx, start, csr, tickets)  # step 4
    archived = archive_artifacts(ctx, start, csr, issued, ca.ca, tickets)  # step 5
    tickets = replace(  # step 6
        tickets, install=open_install_ticket(ctx, start, tickets, archived, issued)
    )
    verification = verify_installation(ctx, start, issued, tickets)  # step 7
    retirement = retire_old_certificate(ctx, start, issued, tickets)  # step 8
    return {
        "domain": start.domain,
        "renewal": start.id,
        "tickets": {"csr": tickets.csr, "owner": tickets.owner, "install": tickets.install},
        "ca": ca.ca,
        "ca_request": request.request_number,
        "archive": [f"{archived.folder}/{name}" for name in archived.files],
        "archive_location": archived.location,
        "old_serial": start.old.serial,
        "new_serial": issued.serial,
        "verified": verification.verified,
        "retired": retirement.retired,
        "revoked": retirement.revoked,
        "urgent": request.urgent,
    }


def offer_csr_reuse(ctx: RenewalContext, start: RenewalStart) -> CsrRecord | None:
    """DCBaaS practice: an archived CSR that still meets the rules may be used again."""
    previous = find_previous_csr(ctx, start)
    if previous is None:
        return None
    answer = forms.ask(
        forms.CsrReuseAnswer,
        Question.CSR_REUSE,
        f"### A previous CSR for {start.domain} is archived\n\n"
        f"Found at `{previous.source}`; it still meets the CSR rules and its key is archived "
        "beside it.\n\nReuse it (no ticket to the systems team), or ask for a new CSR and key?",
    )
    return previous if answer.choice.startswith("Reuse") else None


def wait_for_csr_and_key(ctx: RenewalContext, start: RenewalStart, ticket: str) -> CsrRecord:
    """Step 1: until a good CSR and its key are attached to the CSR ticket."""
    return forms.ask_until_valid(
        lambda pasted, attempt: collect_csr_and_key(ctx, start, ticket, pasted, attempt),
        CsrRecord,
        forms.CsrAnswer,
        Question.CSR,
        lambda problem: f"### Waiting for the CSR and key of {start.domain}\n\n"
        f"**{problem}**\n\nThe systems team was asked in **{ticket}** to attach a `.csr` "
        "and its `.key`. Resume once they are attached (leave the field empty), or paste "
        "the CSR below; the key must be attached to the ticket either way.",
    )


def wait_for_ca_choice(ctx: RenewalContext, start: RenewalStart, ticket: str) -> CaChoice:
    """Step 2: the CA the service owner named, from the ticket or entered by support staff."""
    named = read_ca_answer(ctx, start, ticket)
    if named:
        choice = CaChoice(named, f"{ticket} (comment)")
    else:
        answer = forms.ask(
            forms.ca_choice_form(ctx.renewal.cas),
            Question.CA_CHOICE,
            f"### Which CA renews {start.domain}?\n\nThe service owner was asked in "
            f"**{ticket}**. Enter their answer. Current CA: {start.current_ca or 'unknown'}.",
        )
        # The CA form is built at run time (the configured CAs), so mypy knows only RunInput.
        choice = CaChoice(answer.ca, answer.answered_by)  # type: ignore[attr-defined]
    record_ca_choice(ctx, start, ticket, choice.ca, choice.answered_by)
    return choice


def request_certificate_from_ca(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    ca: CaChoice,
    tickets: RenewalTickets,
    urgent: bool,
) -> CaRequest:
    """Step 3: support staff file the request at the CA with the values shown.

    An urgent request goes through the urgent channel only when a manager
    approved it; refused, it goes through the normal channel. Either way the
    decision, who took it and when, is on the renewal's ticket.
    """
    approved_by = approved_at = ""
    approved = False
    if urgent:
        approval = forms.ask(
            forms.UrgentApproval,
            Question.URGENT_APPROVAL,
            f"### Urgent renewal of {start.domain}\n\nAn urgent request needs a manager's "
            "approval before it is escalated to the CA. Record who decided; leave *Approved* "
            "unticked if they did not approve, and the request goes through the normal channel.",
        )
        approved, approved_by, approved_at = approval.approved, approval.approved_by, now_text()
        record_urgent_decision(ctx, start, tickets.main, approved, approved_by, approved_at)
    channel = (
        "**Urgent channel**, approved by " + approved_by + ".\n\n" if approved else ""
    )
    answer = forms.ask(
        forms.CaRequestAnswer,
        Question.CA_REQUEST,
        channel + ctx.ca_route(ca.ca).request_instructions(start.domain, csr.csr_pem, csr.source),
    )
    record_ca_request(ctx, start, tickets, ca.ca, answer.request_number, answer.requested_by)
    return CaRequest(
        ca.ca, answer.request_number, answer.requested_by, approved_by, approved_at, approved
    )


def wait_for_certificate(
    ctx: RenewalContext, start: RenewalStart, csr: CsrRecord, tickets: RenewalTickets
) -> IssuedRecord:
    """Step 4: until the CA's certificate is pasted or attached and passes every check."""
    return forms.ask_until_valid(
        lambda pasted, attempt: collect_certificate(ctx, start, csr, tickets, pasted, attempt),
        IssuedRecord,
        forms.CertificateAnswer,
        Question.CERTIFICATE,
        lambda problem: f"### Waiting for the new certificate of {start.domain}\n\n"
        f"**{problem}**\n\nPaste the `.crt` the CA mailed, or attach it to "
        f"{' or '.join(tickets.before_install())} and resume with the fields empty.",
    )


def verify_installation(
    ctx: RenewalContext, start: RenewalStart, issued: IssuedRecord, tickets: RenewalTickets
) -> Verification:
    """Step 7: until every endpoint serves the new serial, or a person confirms it."""
    ticket = tickets.install or tickets.main
    for attempt in count(1):
        verification = verify_served_certificate(ctx, start, issued.serial, attempt)
        if verification.verified:
            body = comments.verified(issued.serial, list(verification.served_new))
            break
        answer = forms.ask(
            forms.InstallAnswer,
            forms.pause_key(Question.INSTALL, attempt),
            f"### Waiting for the installation of {start.domain}\n\nThe systems team was "
            f"asked in **{ticket}**. Still not serving serial `{issued.serial}`:\n\n"
            + "\n".join(f"- {line}" for line in verification.still_old)
            + "\n\nResume to check again, or confirm the installation yourself.",
        )
        if answer.action.startswith("The new") and answer.confirmed_by:
            verification = Verification(
                False, verification.served_new, verification.still_old, answer.confirmed_by
            )
            body = comments.verified_by_person(
                issued.serial, answer.confirmed_by, list(verification.still_old)
            )
            break
    comment_verification(ctx, start, ticket, body, verification.confirmed_by)
    return verification


def retire_old_certificate(
    ctx: RenewalContext, start: RenewalStart, issued: IssuedRecord, tickets: RenewalTickets
) -> Retirement:
    """Step 8: only now, revoke or retire the old certificate; notice, close the tickets.

    The revocation notice goes out only when the old certificate was revoked at
    its CA; a certificate retired without revocation (left to expire) gets none.
    """
    answer = forms.ask(
        forms.RetireAnswer,
        Question.RETIRE,
        f"### Retire the old certificate of {start.domain}\n\nThe new certificate "
        f"(serial `{issued.serial}`) is in service. Revoke or retire the old one "
        f"(serial `{start.old.serial}`) at its CA so its expiry reminders stop, then confirm.",
    )
    retired_at = now_text()
    revoked = answer.outcome == "Revoked at the CA"
    if revoked:
        send_notice(
            ctx.notice_channels,
            f"{start.id}-revoked",
            "revocation_notice",
            ctx.notices.recipients,
            name=start.name,
            kind="SSL",
            revoked_at=retired_at,
            domain=start.domain,
            serial=start.old.serial,
            new_serial=issued.serial,
            new_not_after=issued.not_after.isoformat(),
            confirmed_by=answer.confirmed_by,
            tickets=tickets.every(),
        )
    body = comments.retired(start.old.serial, answer.confirmed_by, retired_at, revoked)
    close_tickets(ctx, start, tickets, body, answer.confirmed_by)
    return Retirement(True, answer.confirmed_by, retired_at, revoked)
