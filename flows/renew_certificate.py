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

from certrenew.adapters.ca import PersonRoute, is_automatic
from certrenew.adapters.wiring import RenewalContext
from certrenew.renewal import (
    ArchiveRecord,
    CaChoice,
    CaRequest,
    CsrRecord,
    DeliveredP12,
    IssuedRecord,
    RenewalStart,
    RenewalTickets,
    Retirement,
    Verification,
)
from certrenew.tasks import forms
from certrenew.tasks.archiving import archive_artifacts, find_previous_csr
from certrenew.tasks.ca import (
    AUTOMATIC,
    automatic_route,
    brings_own_key,
    certificate_order,
    collect_issued_certificate,
    collect_p12,
    generate_key_and_csr,
    order_certificate,
    p12_route,
    revoke_instructions,
    revoke_old_certificate,
)
from certrenew.tasks.context import (
    RENEWAL_FLOW,
    context_for_this_run,
    mark_this_run,
    renewal_run_name,
)
from certrenew.tasks.crashes import wait_out_crash_loop
from certrenew.tasks.endpoints import confirm_expiry, now_text, verify_served_certificate
from certrenew.tasks.forms import Question
from certrenew.tasks.guard import older_open_run, post_pending_triggers
from certrenew.tasks.handover import hand_over
from certrenew.tasks.notices import owner_mailbox, send_notice
from certrenew.tasks.people import PersonAsker, Role
from certrenew.tasks.reminders import urgent_now
from certrenew.tasks.report import RenewalReport
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


@flow(name=RENEWAL_FLOW, flow_run_name=renewal_run_name, persist_result=True, log_prints=False)
def renew_certificate(
    name: str, config: str | None = None, force: bool = False, urgent: bool = False
) -> dict[str, Any]:
    """Renew the inventory certificate `name` (or domain), from detection to retirement."""
    ctx = context_for_this_run(config)
    start = confirm_expiry(ctx, name, force)  # step 0
    if earlier := hand_over(start, ctx.renewal.flow_ui_url):  # its crashed run carries it on
        return {"domain": start.domain, "renewal": start.id, "stopped": f"continued by {earlier}"}
    if start.already_renewed:
        return {"domain": start.domain, "renewal": start.id, "stopped": start.note}
    mark_this_run(start.id, start.domain)
    if other := older_open_run(start.name, start.domain, ctx.renewal.flow_ui_url):
        return {"domain": start.domain, "renewal": start.id, "stopped": f"in progress: {other}"}
    wait_out_crash_loop(ctx, start)  # crashed too often: a person looks first

    report = RenewalReport(ctx, start)
    # The inventory's CA decides when its route needs no person (ACME) or brings its
    # own key (ACME generating it, a .p12): then no CSR ticket and no CA question.
    planned = ctx.ca_routes.get(start.current_ca or "")
    own_key = brings_own_key(planned)
    owner_ticket = open_service_owner_ticket(ctx, start)  # step 2, asked first: it takes days
    post_pending_triggers(ctx, owner_ticket)  # requests that came while it was not open yet
    reused = None if own_key or is_automatic(planned) else offer_csr_reuse(ctx, start, owner_ticket)
    csr_ticket = None if reused or own_key else open_csr_ticket(ctx, start)  # step 1
    tickets = report.tickets = RenewalTickets(owner=owner_ticket, csr=csr_ticket)
    if reused:
        record_csr_reuse(ctx, start, tickets.owner, reused.source)
    report.publish("waiting for the CSR and key, and for the service owner's CA")
    csr: CsrRecord | None = None
    if own_key and is_automatic(planned):
        csr = generate_key_and_csr(ctx, start, start.current_ca or "", tickets.owner)
    elif not own_key:
        csr = reused or wait_for_csr_and_key(ctx, start, tickets)  # step 1, answered
    ca = wait_for_ca_choice(ctx, start, tickets, csr)  # step 2, answered
    report.publish(
        "filing the request at the CA", ca=f"{ca.ca} (by {forms.as_typed(ca.answered_by)})"
    )
    archived: ArchiveRecord | None = None
    if automatic_route(ctx, ca.ca):
        assert csr is not None
        request = order_certificate(ctx, start, csr, ca.ca, tickets)  # step 3, no person
        issued = collect_issued_certificate(ctx, start, csr, tickets, request)  # step 4
    else:
        request = request_certificate_from_ca(ctx, start, csr, ca, tickets, urgent)  # step 3
        report.publish(
            "waiting for the certificate the CA mails back",
            ca_request=f"`{request.request_number}` "
            f"(filed by {forms.as_typed(request.requested_by)})",
            urgent=f"approved by {forms.as_typed(request.approved_by)}" if request.urgent else "",
        )
        if p12_route(ctx, ca.ca):
            delivered = wait_for_p12(ctx, start, ca.ca, tickets)  # steps 4 and 5
            issued, archived = delivered.issued, delivered.archived
        else:
            assert csr is not None
            issued = wait_for_certificate(ctx, start, csr, tickets, ca.ca)  # step 4
    if archived is None:
        assert csr is not None
        archived = archive_artifacts(ctx, start, csr, issued, ca.ca, tickets)  # step 5
    tickets = report.tickets = replace(  # step 6
        tickets, install=open_install_ticket(ctx, start, tickets, archived, issued)
    )
    report.publish(
        "waiting for the systems team to install the new certificate",
        archive=f"`{archived.folder}` ({archived.location})",
        new_certificate=f"serial `{issued.serial}`, valid until {issued.not_after:%Y-%m-%d}",
    )
    verification = verify_installation(ctx, start, issued, tickets)  # step 7
    report.publish(
        "waiting for the old certificate to be retired",
        verified=f"confirmed by {forms.as_typed(verification.confirmed_by)}"
        if verification.confirmed_by
        else "served by " + ", ".join(f"`{e}`" for e in verification.served_new),
    )
    retirement = retire_old_certificate(ctx, start, issued, tickets, verification)  # step 8
    report.publish(
        "done: the tickets are closed",
        retired=f"{'revoked' if retirement.revoked else 'retired without revocation'} "
        f"by {forms.as_typed(retirement.confirmed_by)} at {retirement.retired_at}",
    )
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


def support_staff(ctx: RenewalContext, start: RenewalStart) -> PersonAsker:
    """Questions only certificate managers may answer (every one but the urgent approval)."""
    return PersonAsker(ctx, start, Role.CERTIFICATE_MANAGERS)


def renewal_story(ctx: RenewalContext, start: RenewalStart, tickets: RenewalTickets) -> list[str]:
    """The first lines of every form: which certificate, and the tickets opened so far."""
    ticket = ctx.tracker.reference
    lines = [
        f"Renewing **{start.domain}** (inventory `{start.name}`): the certificate in service, "
        f"serial `{start.old.serial}`, expires {start.old.not_after:%Y-%m-%d} "
        f"({start.old.days_left} days left)."
    ]
    if tickets.csr:
        lines.append(f"{ticket(tickets.csr)} asks the systems team for a CSR and its key.")
    lines.append(f"{ticket(tickets.owner)} asks the service owner which CA renews it.")
    if tickets.install:
        lines.append(f"{ticket(tickets.install)} asks the systems team to install it.")
    return lines


def offer_csr_reuse(ctx: RenewalContext, start: RenewalStart, owner: str) -> CsrRecord | None:
    """DCBaaS practice: an archived CSR that still meets the rules may be used again."""
    previous = find_previous_csr(ctx, start)
    if previous is None:
        return None
    answer = support_staff(ctx, start)(
        forms.CsrReuseAnswer,
        Question.CSR_REUSE,
        forms.form_text(
            f"A previous CSR for {start.domain} is archived",
            so_far=[
                *renewal_story(ctx, start, RenewalTickets(owner=owner)),
                f"A CSR archived at `{previous.source}` still meets the CSR rules; its key "
                "is archived beside it.",
            ],
            now="Choose whether to reuse that CSR and key, or to ask the systems team for "
            "a new pair.",
            after="Reused: no ticket goes to the systems team and the CA request comes next. "
            "New: a ticket asks the systems team for a CSR and key.",
        ),
    )
    return previous if answer.choice is forms.CsrReuseChoice.REUSE else None


def wait_for_csr_and_key(
    ctx: RenewalContext, start: RenewalStart, tickets: RenewalTickets
) -> CsrRecord:
    """Step 1: until a good CSR and its key are attached to the CSR ticket."""
    ticket = tickets.main
    return forms.ask_until_valid(
        lambda pasted, attempt: collect_csr_and_key(ctx, start, ticket, pasted, attempt),
        CsrRecord,
        forms.CsrAnswer,
        Question.CSR,
        lambda problem: forms.form_text(
            f"Waiting for the CSR and key of {start.domain}",
            so_far=renewal_story(ctx, start, tickets),
            problem=problem,
            now=f"Make sure the systems team attached a `.csr` and its `.key` to "
            f"{ctx.tracker.reference(ticket)}, "
            "then submit with the CSR field empty; or paste the CSR below. The key is never "
            "typed here: it must be attached to the ticket.",
            after="The CSR is checked (subject, key size, signature) against its key; if "
            "something is wrong this form comes back saying what, and the ticket gets a "
            "comment. Then the CA question.",
        ),
        support_staff(ctx, start),
    )


def wait_for_ca_choice(
    ctx: RenewalContext, start: RenewalStart, tickets: RenewalTickets, csr: CsrRecord | None
) -> CaChoice:
    """Step 2: the CA the service owner named, from the ticket or entered by support staff."""
    ticket = tickets.owner
    planned = ctx.ca_routes.get(start.current_ca or "")
    if is_automatic(planned) or brings_own_key(planned):
        choice = CaChoice(start.current_ca or "", "the inventory")
        record_ca_choice(ctx, start, ticket, choice.ca, choice.answered_by)
        return choice
    named = read_ca_answer(ctx, start, ticket)
    if named:
        choice = CaChoice(named, f"{ticket} (comment)")
    else:
        answer = support_staff(ctx, start)(
            forms.ca_choice_form(ctx.renewal.cas),
            Question.CA_CHOICE,
            forms.form_text(
                f"Which CA renews {start.domain}?",
                so_far=[
                    *renewal_story(ctx, start, tickets),
                    f"The CSR and key are in hand ({csr.source})."
                    if csr
                    else "The CA makes the key.",
                    f"No answer naming one of {', '.join(ctx.renewal.cas)} can be read on "
                    f"{ctx.tracker.reference(ticket)} yet. "
                    f"Current CA: {start.current_ca or 'unknown'}.",
                ],
                now="Ask the service owner (or read their answer on the ticket) and choose "
                "the CA they named.",
                after="The choice is commented on the ticket, then the form with every value "
                "to copy into the CA's portal.",
            ),
        )
        # The CA form is built at run time (the configured CAs), so mypy knows only its base.
        choice = CaChoice(str(answer.ca), answer.who())  # type: ignore[attr-defined]
    record_ca_choice(ctx, start, ticket, choice.ca, choice.answered_by)
    return choice


def request_certificate_from_ca(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord | None,
    ca: CaChoice,
    tickets: RenewalTickets,
    urgent: bool,
) -> CaRequest:
    """Step 3: support staff file the request at the CA with the values shown.

    An urgent request goes through the urgent channel only when a workflow
    manager approved it; refused, it goes through the normal channel. Either
    way the decision, who took it and when, is on the renewal's ticket.
    """
    story = [
        *renewal_story(ctx, start, tickets),
        f"The CA is **{ca.ca}** (by {forms.as_typed(ca.answered_by)}).",
    ]
    approved_by = approved_at = ""
    approved = False
    if urgent_now(urgent):
        approval = PersonAsker(ctx, start, Role.WORKFLOW_MANAGERS)(
            forms.UrgentApproval,
            Question.URGENT_APPROVAL,
            forms.form_text(
                f"Urgent renewal of {start.domain}",
                so_far=story,
                now="An urgent request goes to the CA's urgent channel only with a workflow "
                "manager's approval. The manager who decided enters their login; switch "
                "*Approved* on only if they approved.",
                after="Approved: the CA form marks the request for the urgent channel. Not "
                "approved: the request goes through the normal channel. Either way the "
                "decision is commented on the ticket.",
            ),
        )
        approved, approved_by, approved_at = approval.approved, approval.who(), now_text()
        record_urgent_decision(ctx, start, tickets.main, approved, approved_by, approved_at)
        story.append(
            f"{forms.as_typed(approved_by)} "
            f"{'approved' if approved else 'did not approve'} the urgent request."
        )
    channel = (
        f"**Urgent channel**, approved by {forms.as_typed(approved_by)}.\n\n" if approved else ""
    )
    route = ctx.ca_route(ca.ca)
    assert isinstance(route, PersonRoute)
    answer = support_staff(ctx, start)(
        forms.CaRequestAnswer,
        Question.CA_REQUEST,
        forms.form_text(
            f"File the certificate request for {start.domain} at {ca.ca}",
            so_far=story,
            now=channel + route.request_instructions(certificate_order(start, csr)),
            after="The request number is commented on the tickets; then the flow waits for "
            "the certificate the CA mails back.",
        ),
    )
    record_ca_request(ctx, start, tickets, ca.ca, answer.request_number, answer.who())
    return CaRequest(ca.ca, answer.request_number, answer.who(), approved_by, approved_at, approved)


def wait_for_certificate(
    ctx: RenewalContext, start: RenewalStart, csr: CsrRecord, tickets: RenewalTickets, ca: str
) -> IssuedRecord:
    """Step 4: until the CA's certificate is pasted or attached and passes every check."""
    return forms.ask_until_valid(
        lambda pasted, attempt: collect_certificate(
            ctx, start, csr, tickets, pasted, attempt, ca
        ),
        IssuedRecord,
        forms.CertificateAnswer,
        Question.CERTIFICATE,
        lambda problem: forms.form_text(
            f"Waiting for the new certificate of {start.domain}",
            so_far=[*renewal_story(ctx, start, tickets), "The request was filed at the CA."],
            problem=problem,
            now="Paste the `.crt` the CA mailed below, or attach it to "
            + " or ".join(map(ctx.tracker.reference, tickets.before_install()))
            + " and submit with the fields empty.",
            after="The certificate is checked against the key, the domain, its dates and "
            "its chain; then it is archived with the CSR and key, and the install ticket "
            "is opened.",
        ),
        support_staff(ctx, start),
    )


def wait_for_p12(
    ctx: RenewalContext, start: RenewalStart, ca: str, tickets: RenewalTickets
) -> DeliveredP12:
    """Steps 4 and 5 on a .p12 route: the file and its password, checked and put away.

    Prefect keeps a form's answers in its database; once the password is in the
    password safe, every stored answer to this question is blanked there.
    """
    delivered = forms.ask_until_valid(
        lambda pasted, attempt: collect_p12(ctx, start, ca, tickets, pasted, attempt),
        DeliveredP12,
        forms.P12Answer,
        Question.P12,
        lambda problem: forms.form_text(
            f"Waiting for the .p12 of {start.domain}",
            so_far=[*renewal_story(ctx, start, tickets), f"The request was filed at {ca}."],
            problem=problem,
            now="Download the `.p12` from the CA's subscriber portal. Give its path on the "
            "machine running the flow, or attach it to "
            + " or ".join(map(ctx.tracker.reference, tickets.before_install()))
            + " and leave the path empty; enter its password.",
            after="The file is opened and checked (one key, its certificate, the domain, "
            "the dates); then it is archived and its password goes to the password safe, "
            "and only there.",
        ),
        support_staff(ctx, start),
    )
    forms.forget_answers(Question.P12, forms.P12Answer.secret_fields)
    return delivered


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
        answer = support_staff(ctx, start)(
            forms.InstallAnswer,
            forms.pause_key(Question.INSTALL, attempt),
            forms.form_text(
                f"Waiting for the installation of {start.domain}",
                so_far=[
                    *renewal_story(ctx, start, tickets),
                    f"The new certificate (serial `{issued.serial}`) is archived.",
                ],
                problem="Still not serving the new certificate:\n\n"
                + "\n".join(f"- {line}" for line in verification.still_old),
                now=f"The systems team was asked in {ctx.tracker.reference(ticket)} to "
                "install it. Check again once they say it is done, or confirm the "
                "installation yourself (for endpoints this machine cannot reach).",
                after="Checked again: the endpoints are read once more. Confirmed: the "
                "confirmation is commented on the ticket and the retirement comes next.",
            ),
        )
        if answer.action is forms.InstallAction.CONFIRM:
            verification = Verification(
                False, verification.served_new, verification.still_old, answer.who()
            )
            body = comments.verified_by_person(
                issued.serial, answer.who(), list(verification.still_old)
            )
            break
    comment_verification(ctx, start, ticket, body, verification.confirmed_by)
    return verification


def retire_old_certificate(
    ctx: RenewalContext,
    start: RenewalStart,
    issued: IssuedRecord,
    tickets: RenewalTickets,
    verification: Verification,
) -> Retirement:
    """Step 8: only now, revoke or retire the old certificate; notice, close the tickets.

    On an automatic route the route revokes the old certificate itself (as
    superseded) when the archive holds it; otherwise a person says what was
    done. The revocation notice goes out only when the old certificate was
    revoked at its CA; a certificate retired without revocation gets none.
    """
    served = (
        f"confirmed by {forms.as_typed(verification.confirmed_by)}"
        if verification.confirmed_by
        else "served by " + ", ".join(verification.served_new)
    )
    if automatic_route(ctx, start.current_ca) and revoke_old_certificate(ctx, start):
        retired_at = now_text()
        send_revocation_notice(ctx, start, issued, tickets, AUTOMATIC, retired_at)
        body = comments.retired(start.old.serial, AUTOMATIC, retired_at, True)
        close_tickets(ctx, start, tickets, body, AUTOMATIC)
        return Retirement(True, AUTOMATIC, retired_at, revoked=True)
    answer = support_staff(ctx, start)(
        forms.RetireAnswer,
        Question.RETIRE,
        forms.form_text(
            f"Retire the old certificate of {start.domain}",
            so_far=[
                *renewal_story(ctx, start, tickets),
                f"The new certificate (serial `{issued.serial}`, valid until "
                f"{issued.not_after:%Y-%m-%d}) is in service: {served}.",
            ],
            now=revoke_instructions(ctx.route_of_old(start.current_ca), start.old.serial),
            after="Revoked: the revocation notice is sent. Either way the outcome is "
            "commented on every ticket and the tickets are closed: the renewal is done.",
        ),
    )
    retired_at = now_text()
    revoked = answer.outcome is forms.RetireOutcome.REVOKED
    if revoked:
        send_revocation_notice(ctx, start, issued, tickets, answer.who(), retired_at)
    body = comments.retired(start.old.serial, answer.who(), retired_at, revoked)
    close_tickets(ctx, start, tickets, body, answer.who())
    return Retirement(True, answer.who(), retired_at, revoked)


def send_revocation_notice(
    ctx: RenewalContext,
    start: RenewalStart,
    issued: IssuedRecord,
    tickets: RenewalTickets,
    revoked_by: str,
    revoked_at: str,
) -> None:
    send_notice(
        ctx.notice_channels,
        f"{start.id}-revoked",
        "revocation_notice",
        ctx.notices.recipients_for("revocation", owner_mailbox(ctx.inventory, start.name)),
        name=start.name,
        kind="SSL",
        revoked_at=revoked_at,
        domain=start.domain,
        serial=start.old.serial,
        new_serial=issued.serial,
        new_not_after=issued.not_after.isoformat(),
        confirmed_by=revoked_by,
        tickets=tickets.every(),
    )
