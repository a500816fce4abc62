"""Runbook steps that touch the ticket tracker (Jira, or its local stand-in).

Every ticket is opened with `ensure_ticket` (search by label first) and every
comment carries a step marker and is posted once, so a step repeated after a
crash neither opens a second ticket nor says the same thing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

from cryptography.hazmat.primitives.serialization import Encoding

from certrenew.adapters.ca import is_automatic
from certrenew.adapters.tracker import (
    Attachment,
    NewTicket,
    Ticket,
    TicketTracker,
    ensure_ticket,
    read_attachments,
)
from certrenew.adapters.wiring import RenewalContext
from certrenew.errors import CertificateError
from certrenew.pki.csr import check_csr, check_key_matches_csr, load_csr, load_private_key
from certrenew.pki.files import classify_file
from certrenew.pki.issued import IssuedCertificate, check_issued_certificate, load_certificates
from certrenew.renewal import (
    ArchiveRecord,
    CsrRecord,
    IssuedRecord,
    KeySource,
    RenewalStart,
    RenewalTickets,
)
from certrenew.rules import (
    ca_named_in,
    certificate_candidates,
    is_step_comment,
    misplaced_certificates,
    newest_of_each_kind,
    step_footer,
)
from certrenew.tasks.context import renewal_step, say
from certrenew.templates import comments, render_ticket

T = TypeVar("T")
TicketKind = Literal["csr", "owner", "install"]


def comment_once(ctx: RenewalContext, key: str, step: str, body: str, actor: str = "") -> None:
    """Post `body` on `key` unless a comment of this step is already there.

    The comment ends with the step, the person who answered it (`actor`, when a
    person did) and the run's page: the ticket alone tells an auditor who decided.
    """
    post_once(ctx.tracker, key, step, body, actor, ctx.run_url)


def post_once(
    tracker: TicketTracker, key: str, step: str, body: str, actor: str = "", run_url: str = ""
) -> bool:
    """`comment_once` for callers outside a renewal run (the guard); True when posted.

    A comment is this step's only by its last line, the footer certrenew writes:
    the marker quoted anywhere else (in a person's comment, or in outside text
    a comment repeats) must not silence the step.
    """
    if any(is_step_comment(existing, step) for existing in tracker.comments(key)):
        return False
    tracker.add_comment(key, f"{body}\n\n{step_footer(step, actor, run_url)}\n")
    return True


# None is "no answer yet" and stays inside T: typed `T | None`, mypy would solve T for a
# `CsrRecord | str | None` check as the join of CsrRecord and str, `object`.
def poll(check: Callable[[], T], minutes: float, every_seconds: float) -> T:
    """Call `check` until it answers or `minutes` pass; a short wait before asking a person."""
    deadline = time.monotonic() + minutes * 60
    while True:
        answer = check()
        if answer is not None or time.monotonic() + every_seconds > deadline:
            return answer
        time.sleep(every_seconds)


def _open_ticket(
    ctx: RenewalContext, start: RenewalStart, kind: TicketKind, **extra: object
) -> Ticket:
    chain = ctx.chain
    project = {
        "csr": chain.csr_project,
        "owner": chain.owner_project,
        "install": chain.install_project,
    }[kind]
    summary, description = render_ticket(
        f"{kind}_ticket",
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
            labels=tuple(dict.fromkeys(("certrenew", start.id, *chain.labels))),
            assignee=start.owner if kind == "owner" else None,
            issue_type=chain.issue_type,
        ),
    )


@renewal_step("open-csr-ticket")
def open_csr_ticket(ctx: RenewalContext, start: RenewalStart) -> str:
    """Step 1: ask the systems team for a CSR and a key."""
    key = _open_ticket(ctx, start, "csr", csr=ctx.subject).key
    say(f"opened {key} asking the systems team for a CSR and key for {start.domain}")
    return key


@renewal_step("open-service-owner-ticket")
def open_service_owner_ticket(ctx: RenewalContext, start: RenewalStart) -> str:
    """Step 2: ask the domain's service owner which CA renews it."""
    automatic = is_automatic(ctx.route_of_old(start.current_ca))
    key = _open_ticket(
        ctx,
        start,
        "owner",
        cas=ctx.renewal.cas,
        current_ca=start.current_ca,
        days_left=start.old.days_left,
        automatic=automatic,
    ).key
    say(
        f"opened {key} telling the service owner {start.domain} renews through "
        f"{start.current_ca} by itself"
        if automatic
        else f"opened {key} asking the service owner which CA renews {start.domain}"
    )
    return key


@renewal_step("record-csr-reuse")
def record_csr_reuse(ctx: RenewalContext, start: RenewalStart, ticket: str, source: str) -> None:
    comment_once(ctx, ticket, "csr-reused", comments.csr_reused(source))
    say(f"reusing the archived CSR and key at {source}; said so on {ticket}")


def check_csr_and_key(
    ctx: RenewalContext, start: RenewalStart, ticket: str, pasted_csr: str
) -> CsrRecord | str | None:
    """The CSR and key on `ticket` if both are there and good, a problem, or None (not yet)."""
    read = read_attachments(ctx.tracker, ticket)
    newest = newest_of_each_kind(read.files)
    key = newest.get("private_key")
    csr_bytes = pasted_csr.encode() if pasted_csr.strip() else None
    if csr_bytes is None and "csr" in newest:
        csr_bytes = newest["csr"][1]
    if key is None or csr_bytes is None:
        return _wrong_step_1_file(ticket, read.files, csr_bytes is None) or (
            read.refused[0] if read.refused else None
        )
    try:
        check_csr(csr_bytes, ctx.subject.rules(), start.domain, start.old.sans)
        fingerprint = check_key_matches_csr(key[1], csr_bytes)
    except CertificateError as exc:
        return f"{exc}"
    return CsrRecord(
        csr_pem=load_csr(csr_bytes).public_bytes(Encoding.PEM).decode(),
        key=KeySource("ticket", ticket, key[0].filename, key[0].id),
        key_fingerprint=fingerprint,
        source=ticket,
    )


def _wrong_step_1_file(
    ticket: str, files: list[tuple[Attachment, bytes]], csr_missing: bool
) -> str | None:
    """What the newest attachment that is neither a CSR nor a key is, said as the refusal
    of the file still missing; None when every attachment is one of them."""
    for attachment, data in reversed(files):
        if classify_file(data) in ("csr", "private_key"):
            continue
        try:
            load_csr(data) if csr_missing else load_private_key(data)
        except CertificateError as exc:
            return f"{attachment.filename} on {ticket}: {exc}"
    return None


@renewal_step("collect-csr-and-key")
def collect_csr_and_key(
    ctx: RenewalContext, start: RenewalStart, ticket: str, pasted: dict[str, str], attempt: int
) -> CsrRecord | str:
    """Step 1 (waiting): poll the CSR ticket a while; the record or what a person must fix."""
    outcome = poll(
        lambda: check_csr_and_key(ctx, start, ticket, pasted.get("csr_pem", "")),
        ctx.renewal.attachment_poll_minutes,
        ctx.renewal.attachment_poll_seconds,
    )
    if isinstance(outcome, CsrRecord):
        comment_once(
            ctx,
            ticket,
            "csr-received",
            comments.csr_received(outcome.key.name, outcome.key_fingerprint),
        )
        say(f"took the CSR and key {outcome.key.name} from {ticket}: they match the rules")
        return outcome
    if outcome is None:
        say(f"{ticket} has no .csr and .key attached yet; asking support staff")
        return f"{ticket} has no .csr and .key attached yet"
    comment_once(ctx, ticket, f"csr-rejected-{attempt}", comments.csr_rejected(outcome))
    say(f"refused the CSR and key on {ticket} and said why on the ticket: {outcome}")
    return outcome


@renewal_step("read-ca-answer")
def read_ca_answer(ctx: RenewalContext, start: RenewalStart, ticket: str) -> str | None:
    """Step 2 (answer): the CA the service owner named in a comment, if one can be read."""
    named = ca_named_in(ctx.tracker.comments(ticket), ctx.renewal.cas)
    say(
        f"the service owner named {named} on {ticket}"
        if named
        else f"no CA named on {ticket} yet; asking support staff"
    )
    return named


@renewal_step("record-ca-choice")
def record_ca_choice(
    ctx: RenewalContext, start: RenewalStart, ticket: str, ca: str, answered_by: str
) -> None:
    comment_once(ctx, ticket, "ca-chosen", comments.ca_chosen(ca, answered_by), answered_by)
    say(f"the CA is {ca} (per {answered_by}); commented on {ticket}")


@renewal_step("record-urgent-decision")
def record_urgent_decision(
    ctx: RenewalContext, start: RenewalStart, ticket: str, approved: bool, by: str, at: str
) -> None:
    comment_once(ctx, ticket, "urgent-decision", comments.urgent_decision(approved, by, at), by)
    decision = "approved" if approved else "did not approve"
    say(f"{by} {decision} the urgent channel at {at}; commented on {ticket}")


@renewal_step("record-ca-request")
def record_ca_request(
    ctx: RenewalContext,
    start: RenewalStart,
    tickets: RenewalTickets,
    ca: str,
    number: str,
    by: str,
) -> None:
    portal = ctx.ca_route(ca).portal
    for ticket in tickets.before_install():
        comment_once(ctx, ticket, "ca-requested", comments.ca_requested(ca, portal, number, by), by)
    say(f"{by} filed request {number} at {ca}; commented on {', '.join(tickets.before_install())}")


def check_issued(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    tickets: RenewalTickets,
    pasted: dict[str, str],
    ca: str = "",
) -> IssuedRecord | str | None:
    """The CA's certificate from the form or a ticket, validated; else the first problem.

    With `ca` named, a certificate whose issuer is not that CA's is refused.
    """
    route = ctx.ca_routes.get(ca)
    read = {ticket: read_attachments(ctx.tracker, ticket) for ticket in tickets.before_install()}
    attached = [
        (ticket, [(a.filename, data) for a, data in files.files]) for ticket, files in read.items()
    ]
    chain = pasted.get("chain_pem", "")
    problems: list[str] = []
    for source, data in certificate_candidates(pasted.get("certificate_pem", ""), attached):
        try:
            issued = check_issued_certificate(
                data,
                key_fingerprint=csr.key_fingerprint,
                domain=start.domain,
                max_lifetime_days=ctx.renewal.max_lifetime_days,
                chain=chain.encode() if chain.strip() else None,
                issuers=route.issuers if route else (),
                ca=ca or "the CA",
            )
        except CertificateError as exc:
            problems.append(f"{source}: {exc}")
            continue
        return issued_record(issued, source)
    for source, data in misplaced_certificates(attached):
        try:
            load_certificates(data, source)
        except CertificateError as exc:
            problems.append(str(exc))
    problems += [refused for files in read.values() for refused in files.refused]
    return problems[0] if problems else None


def issued_record(issued: IssuedCertificate, source: str) -> IssuedRecord:
    """What the renewal keeps of an accepted certificate (public data only)."""
    return IssuedRecord(
        cert_pem=issued.leaf_pem.decode(),
        chain_pem=issued.chain_pem.decode(),
        serial=issued.facts.serial,
        not_before=issued.facts.not_before,
        not_after=issued.facts.not_after,
        sha256=issued.facts.sha256,
        source=source,
    )


def certificate_accepted(
    ctx: RenewalContext, tickets: RenewalTickets, outcome: IssuedRecord
) -> None:
    """Say on the main ticket and in the run's log that the new certificate passed every check."""
    comment_once(
        ctx,
        tickets.main,
        "certificate-received",
        comments.certificate_received(outcome.serial, outcome.not_after, outcome.source),
    )
    say(
        f"took the new certificate from {outcome.source}: serial {outcome.serial}, valid "
        f"until {outcome.not_after:%Y-%m-%d}; commented on {tickets.main}"
    )


@renewal_step("collect-certificate")
def collect_certificate(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    tickets: RenewalTickets,
    pasted: dict[str, str],
    attempt: int,
    ca: str = "",
) -> IssuedRecord | str:
    """Step 4 (waiting): the validated certificate, or exactly why it cannot be used."""
    outcome = poll(
        lambda: check_issued(ctx, start, csr, tickets, pasted, ca),
        ctx.renewal.attachment_poll_minutes,
        ctx.renewal.attachment_poll_seconds,
    )
    if isinstance(outcome, IssuedRecord):
        certificate_accepted(ctx, tickets, outcome)
        return outcome
    if outcome is None:
        outcome = (
            "no certificate has been pasted or attached to "
            f"{', '.join(tickets.before_install())} yet"
        )
        say(f"{outcome}; asking support staff")
        return outcome
    comment_once(
        ctx, tickets.main, f"certificate-rejected-{attempt}", comments.certificate_rejected(outcome)
    )
    say(f"refused the certificate and said why on {tickets.main}: {outcome}")
    return outcome


@renewal_step("open-install-ticket")
def open_install_ticket(
    ctx: RenewalContext,
    start: RenewalStart,
    tickets: RenewalTickets,
    archived: ArchiveRecord,
    issued: IssuedRecord,
) -> str:
    """Step 6: ask the systems team to install, linked to the earlier tickets."""
    related = tickets.before_install()
    ticket = _open_ticket(
        ctx,
        start,
        "install",
        archive_location=archived.location,
        files=archived.files,
        new=issued,
        endpoints=start.endpoints or start.files,
        related=related,
        key_protected=archived.key_protected,
        key_passphrase_location=ctx.archive.key_passphrase_hint,
    ).key
    for other in related:
        ctx.tracker.link_tickets(ticket, other, ctx.chain.link_type)
        comment_once(ctx, other, "install-opened", comments.install_opened(ticket))
    say(
        f"opened {ticket} asking the systems team to install serial {issued.serial}, "
        f"linked to {', '.join(related)}"
    )
    return ticket


@renewal_step("comment-verification")
def comment_verification(
    ctx: RenewalContext, start: RenewalStart, ticket: str, body: str, confirmed_by: str
) -> None:
    """Step 7 (end): the endpoints serve the new certificate, or who confirmed it does."""
    comment_once(ctx, ticket, "verified", body, confirmed_by)
    say(f"commented the installation check on {ticket}")


@renewal_step("close-tickets")
def close_tickets(
    ctx: RenewalContext, start: RenewalStart, tickets: RenewalTickets, body: str, retired_by: str
) -> None:
    """Step 8 (end): say how it ended on every ticket, and who confirmed it; then close them."""
    for ticket in tickets.every():
        comment_once(ctx, ticket, "retired", body, retired_by)
        ctx.tracker.close_ticket(ticket)
    say(f"closed {', '.join(tickets.every())}: the renewal of {start.domain} is done")
