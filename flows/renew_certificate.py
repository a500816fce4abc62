"""The renewal runbook (RUNBOOK.md, steps 0-8) as one resumable flow.

Read top to bottom, `renew_certificate` is the runbook's step table. Every
human step suspends the run; on resume Prefect runs this function again from
the top, every finished step returns its stored result (see tasks/context.py),
and every question already answered returns its answer, so the run continues
exactly where it stopped.

The service-owner ticket is opened right after the CSR ticket, before waiting
for either answer: both questions take days, and asking them together saves
those days without changing what is asked.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any, TypeVar

from prefect import flow

from certrenew.errors import (
    ArchiveError,
    AuthenticationError,
    CertificateError,
    ServiceUnavailable,
    TrackerError,
)
from certrenew.renewal import (
    CaChoice,
    CaRequest,
    CsrRecord,
    IssuedRecord,
    RenewalStart,
    Retirement,
    Verification,
)
from certrenew.tasks import forms
from certrenew.tasks.archiving import archive_artifacts, find_previous_csr
from certrenew.tasks.context import RenewalContext, other_active_run, renewal_context, renewal_step
from certrenew.tasks.endpoints import (
    NothingServed,
    confirm_expiry,
    now_text,
    verify_served_certificate,
)
from certrenew.tasks.notices import write_notice
from certrenew.tasks.tickets import (
    ca_named_on_ticket,
    close_tickets,
    collect_certificate,
    collect_csr_and_key,
    comment_verification,
    open_csr_ticket,
    open_install_ticket,
    open_service_owner_ticket,
    record_ca_choice,
    record_ca_request,
)
from certrenew.templates import comments, render

T = TypeVar("T")

# Failures a person can fix while the run waits; anything else is a bug and fails the run.
RECOVERABLE = (
    ServiceUnavailable,
    AuthenticationError,
    TrackerError,
    ArchiveError,
    CertificateError,
    NothingServed,
)


def until_done(step: str, call: Callable[[], T]) -> T:
    """Run a step; when an outside system fails, wait for a person instead of failing.

    The run suspends with the reason (Jira down, ticket deleted, SharePoint
    refusing...) and tries again when resumed: nothing done so far is lost.
    """
    for attempt in count(1):
        try:
            return call()
        except RECOVERABLE as exc:
            forms.ask(
                forms.WaitAnswer,
                f"wait-{step}-{attempt}",
                f"### Step '{step}' could not finish\n\n{exc}\n\n"
                "Nothing done so far is lost. Fix the cause, then resume to try again.",
            )
    raise AssertionError("unreachable")


@flow(name="renew-certificate", persist_result=True, log_prints=False)
def renew_certificate(
    name: str, config: str | None = None, force: bool = False, urgent: bool = False
) -> dict[str, Any]:
    """Renew the inventory certificate `name` (or domain), from detection to retirement."""
    ctx = renewal_context(config)
    start = until_done("confirm-expiry", lambda: confirm_expiry(ctx, name, force))
    if start.already_renewed:
        return {"domain": start.domain, "renewal": start.id, "stopped": start.note}
    if other := other_active_run(start.name, ctx.settings):
        return {"domain": start.domain, "renewal": start.id, "stopped": f"in progress: {other}"}

    csr = offer_csr_reuse(ctx, start)
    csr_ticket = None if csr else until_done("csr-ticket", lambda: open_csr_ticket(ctx, start))
    owner_ticket = until_done("owner-ticket", lambda: open_service_owner_ticket(ctx, start))
    tickets = [t for t in (csr_ticket, owner_ticket) if t]
    roles = {"csr": csr_ticket, "service_owner": owner_ticket}
    if csr is None:
        assert csr_ticket
        csr = wait_for_csr_and_key(ctx, start, csr_ticket)
    ca = wait_for_ca_choice(ctx, start, owner_ticket)
    request = request_certificate_from_ca(ctx, start, csr, ca, tickets, urgent)
    issued = wait_for_certificate(ctx, start, csr, tickets)
    archived = until_done(
        "archive",
        lambda: archive_artifacts(
            ctx, start, csr, issued, ca.ca, {k: v for k, v in roles.items() if v}
        ),
    )
    install_ticket = until_done(
        "install-ticket",
        lambda: open_install_ticket(ctx, start, tickets, archived, issued),
    )
    verification = verify_installation(ctx, start, issued, install_ticket)
    retirement = retire_old_certificate(ctx, start, issued, [*tickets, install_ticket])
    return {
        "domain": start.domain,
        "renewal": start.id,
        "tickets": {"csr": csr_ticket, "owner": owner_ticket, "install": install_ticket},
        "ca": ca.ca,
        "ca_request": request.request_number,
        "archive": [f"{archived.folder}/{name}" for name in archived.files],
        "archive_location": archived.location,
        "old_serial": start.old.serial,
        "new_serial": issued.serial,
        "verified": verification.verified,
        "retired": retirement.retired,
    }


def offer_csr_reuse(ctx: RenewalContext, start: RenewalStart) -> CsrRecord | None:
    """DCBaaS practice: an archived CSR that still meets the rules may be used again."""
    previous = until_done("find-previous-csr", lambda: find_previous_csr(ctx, start))
    if previous is None:
        return None
    answer = forms.ask(
        forms.CsrReuseAnswer,
        "csr-reuse",
        f"### A previous CSR for {start.domain} is archived\n\n"
        f"Found at `{previous.source}`; it still meets the CSR rules and its key is archived "
        "beside it.\n\nReuse it (no ticket to the systems team), or ask for a new CSR and key?",
    )
    return previous if answer.choice.startswith("Reuse") else None


def wait_for_csr_and_key(ctx: RenewalContext, start: RenewalStart, ticket: str) -> CsrRecord:
    """Step 1: until a good CSR and its key are attached to the CSR ticket."""
    pasted = ""
    for attempt in count(1):
        outcome = until_done(
            "csr",
            lambda: collect_csr_and_key(ctx, start, ticket, pasted, attempt),  # noqa: B023
        )
        if isinstance(outcome, CsrRecord):
            return outcome
        answer = forms.ask(
            forms.CsrAnswer,
            f"csr-{attempt}",
            f"### Waiting for the CSR and key of {start.domain}\n\n"
            f"**{outcome}**\n\nThe systems team was asked in **{ticket}** to attach a `.csr` "
            "and its `.key`. Resume once they are attached (leave the field empty), or paste "
            "the CSR below; the key must be attached to the ticket either way.",
        )
        pasted = answer.csr_pem or pasted
    raise AssertionError("unreachable")


@renewal_step("read-ca-answer")
def read_ca_answer(ctx: RenewalContext, start: RenewalStart, ticket: str) -> str | None:
    _, _, renewal = ctx.settings.for_renewal()
    return ca_named_on_ticket(ctx, ticket, renewal.cas)


def wait_for_ca_choice(ctx: RenewalContext, start: RenewalStart, ticket: str) -> CaChoice:
    """Step 2: the CA the service owner named, from the ticket or entered by support staff."""
    _, _, renewal = ctx.settings.for_renewal()
    named = until_done("ca-answer", lambda: read_ca_answer(ctx, start, ticket))
    if named:
        choice = CaChoice(named, f"{ticket} (comment)")
    else:
        answer = forms.ask(
            forms.ca_choice_form(renewal.cas),
            "ca-choice",
            f"### Which CA renews {start.domain}?\n\nThe service owner was asked in "
            f"**{ticket}**. Enter their answer. Current CA: {start.current_ca or 'unknown'}.",
        )
        choice = CaChoice(answer.ca, answer.answered_by)  # type: ignore[attr-defined]
    until_done(
        "ca-choice",
        lambda: record_ca_choice(ctx, start, ticket, choice.ca, choice.answered_by),
    )
    return choice


def request_certificate_from_ca(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    ca: CaChoice,
    tickets: list[str],
    urgent: bool,
) -> CaRequest:
    """Step 3: support staff file the request in the CA's portal with the values shown."""
    _, ca_request, _ = ctx.settings.for_renewal()
    approved_by = approved_at = ""
    if urgent:
        approval = forms.ask(
            forms.UrgentApproval,
            "urgent-approval",
            f"### Urgent renewal of {start.domain}\n\nAn urgent request needs a manager's "
            "approval before it is escalated to the CA. Record who approved it.",
        )
        approved_by, approved_at = approval.approved_by, now_text()
    fields = [
        (field, value.replace("{domain}", start.domain))
        for field, value in ca_request.fields.items()
    ]
    answer = forms.ask(
        forms.CaRequestAnswer,
        "ca-request",
        render(
            "ca_request",
            ca_request=ca_request,
            fields=fields,
            domain=start.domain,
            csr_ticket=tickets[0],
            csr_pem=csr.csr_pem.strip(),
            problem="",
        ),
    )
    until_done(
        "ca-request",
        lambda: record_ca_request(
            ctx, start, tickets, ca.ca, answer.request_number, answer.requested_by
        ),
    )
    return CaRequest(ca.ca, answer.request_number, answer.requested_by, approved_by, approved_at)


def wait_for_certificate(
    ctx: RenewalContext, start: RenewalStart, csr: CsrRecord, tickets: list[str]
) -> IssuedRecord:
    """Step 4: until the CA's certificate is pasted or attached and passes every check."""
    pasted = chain = ""
    for attempt in count(1):
        outcome = until_done(
            "certificate",
            lambda: collect_certificate(ctx, start, csr, tickets, pasted, chain, attempt),  # noqa: B023
        )
        if isinstance(outcome, IssuedRecord):
            return outcome
        answer = forms.ask(
            forms.CertificateAnswer,
            f"certificate-{attempt}",
            f"### Waiting for the new certificate of {start.domain}\n\n**{outcome}**\n\n"
            f"Paste the `.crt` the CA mailed, or attach it to {' or '.join(tickets)} and "
            "resume with the fields empty.",
        )
        pasted, chain = answer.certificate_pem or pasted, answer.chain_pem or chain
    raise AssertionError("unreachable")


def verify_installation(
    ctx: RenewalContext, start: RenewalStart, issued: IssuedRecord, ticket: str
) -> Verification:
    """Step 7: until every endpoint serves the new serial, or a person confirms it."""
    for attempt in count(1):
        verification = verify_served_certificate(ctx, start, issued.serial, attempt)
        if verification.verified:
            body = comments.verified(issued.serial, list(verification.served_new))
            break
        answer = forms.ask(
            forms.InstallAnswer,
            f"install-{attempt}",
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
    until_done("verified", lambda: comment_verification(ctx, start, ticket, body))
    return verification


def retire_old_certificate(
    ctx: RenewalContext, start: RenewalStart, issued: IssuedRecord, tickets: list[str]
) -> Retirement:
    """Step 8: only now, revoke or retire the old certificate; notice, close the tickets."""
    answer = forms.ask(
        forms.RetireAnswer,
        "retire",
        f"### Retire the old certificate of {start.domain}\n\nThe new certificate "
        f"(serial `{issued.serial}`) is in service. Revoke or retire the old one "
        f"(serial `{start.old.serial}`) at its CA so its expiry reminders stop, then confirm.",
    )
    retired_at = now_text()
    write_notice(
        ctx.settings.outbox_path(),
        f"{start.id}-revoked",
        "revocation_notice",
        ctx.settings.notices.recipients,
        name=start.name,
        kind="SSL",
        revoked_at=retired_at,
        domain=start.domain,
        serial=start.old.serial,
        new_serial=issued.serial,
        new_not_after=issued.not_after.isoformat(),
        confirmed_by=answer.confirmed_by,
        tickets=tickets,
    )
    body = comments.retired(start.old.serial, answer.confirmed_by, retired_at)
    until_done("close-tickets", lambda: close_tickets(ctx, start, tickets, body))
    return Retirement(True, answer.confirmed_by, retired_at)
