"""Runbook steps that talk to the CA through its route (certrenew.adapters.ca).

Which route serves a renewal is the CA the service owner named (step 2), or
the inventory's `ca` when that CA's route needs no person. The old
certificate is revoked through the route of the CA that issued it (the
inventory's `ca`), and only after the new one is verified in service.

On an automatic route with `key = "generate"` the flow makes the key itself:
it goes straight into the archive folder, and step results refer to it by
where it lies and by its public-key fingerprint, as for a key from a ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from certrenew.adapters.archive import store_file
from certrenew.adapters.archive.renewal import MANIFEST_NAME, archive_renewal
from certrenew.adapters.ca import AutomaticRoute, CaRoute, CertificateOrder, PersonRoute
from certrenew.adapters.ca.p12 import P12Route
from certrenew.adapters.tracker import read_attachments
from certrenew.adapters.wiring import RenewalContext
from certrenew.errors import CaError, CertificateError
from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.pki.certs import certificate_facts
from certrenew.pki.csr import check_key_matches_csr, csr_names, make_key_and_csr
from certrenew.pki.issued import check_issued_certificate, load_certificates
from certrenew.pki.keyprotect import protect_private_key
from certrenew.pki.pkcs12 import check_pkcs12
from certrenew.renewal import (
    ArchiveRecord,
    CaRequest,
    CsrRecord,
    DeliveredP12,
    IssuedRecord,
    KeySource,
    RenewalStart,
    RenewalTickets,
)
from certrenew.rules import newest_of_each_kind, reuse_years
from certrenew.tasks.archiving import renewal_record
from certrenew.tasks.context import renewal_step, say
from certrenew.tasks.tickets import certificate_accepted, comment_once, issued_record
from certrenew.templates import comments

# Who acted on an automatic route, in tickets, the report and the history.
AUTOMATIC = "certrenew (ACME)"


def certificate_order(start: RenewalStart, csr: CsrRecord | None) -> CertificateOrder:
    """The order for this renewal: the domain first, then the other names the CSR asks for.

    Without a CSR (the CA makes the key) the names are those of the certificate
    in service, and the order carries no CSR.
    """
    if csr is None:
        names = tuple(dict.fromkeys((start.domain.lower(), *start.old.sans)))
        return CertificateOrder(start.domain, names, "", "")
    names = tuple(dict.fromkeys((start.domain.lower(), *csr_names(csr.csr_pem.encode()))))
    return CertificateOrder(start.domain, names, csr.csr_pem, csr.source)


def automatic_route(ctx: RenewalContext, ca: str | None) -> AutomaticRoute | None:
    """The route of `ca` when it needs no person, else None."""
    route = ctx.ca_routes.get(ca) if ca else None
    return route if isinstance(route, AutomaticRoute) else None


def generates_key(route: AutomaticRoute | None) -> bool:
    return bool(getattr(route, "generates_key", False))


def revoke_instructions(route: CaRoute | None, serial: str) -> str:
    """What support staff do with the old certificate, in the words of its CA's route."""
    if isinstance(route, PersonRoute):
        return route.revoke_instructions(serial)
    return (
        f"Revoke the old certificate (serial `{serial}`) at its CA, or decide to let it "
        "expire, so its expiry reminders stop; then say which."
    )


@renewal_step("generate-key-and-csr")
def generate_key_and_csr(
    ctx: RenewalContext, start: RenewalStart, ca: str, ticket: str
) -> CsrRecord:
    """Step 1 on a route that makes its own key: key and CSR straight into the archive.

    A key already left there by an interrupted attempt is used again with its CSR,
    so a retried step never makes a second key.
    """
    setup = ctx.archive
    archive = setup.archive
    folder = renewal_folder(setup.root_folder, ca, datetime.now(UTC).year, start.domain)
    names = renewal_file_names(start.domain)
    present = {f.name for f in archive.list_files(folder)}
    passphrase = setup.key_passphrase.get_secret_value() if setup.key_passphrase else None
    if {names["key"], names["csr"]} <= present:
        key_pem = archive.read_file(folder, names["key"])
        csr_pem = archive.read_file(folder, names["csr"])
    else:
        plain, csr_pem = make_key_and_csr(ctx.subject.rules(), (start.domain, *start.old.sans))
        key_pem = protect_private_key(plain, passphrase)
        del plain
        store_file(archive, folder, names["csr"], csr_pem, setup.on_conflict)
        store_file(archive, folder, names["key"], key_pem, setup.on_conflict)
    fingerprint = check_key_matches_csr(
        key_pem, csr_pem, passphrase.encode() if passphrase else None
    )
    del key_pem, passphrase  # the key goes no further than the archive
    location = archive.location(folder)
    comment_once(ctx, ticket, "key-generated", comments.key_generated(location))
    say(f"generated the key and CSR for {start.domain}; the key went straight to {location}")
    return CsrRecord(
        csr_pem=csr_pem.decode(),
        key=KeySource("archive", folder, names["key"]),
        key_fingerprint=fingerprint,
        source=location,
    )


@renewal_step("order-certificate")
def order_certificate(
    ctx: RenewalContext, start: RenewalStart, csr: CsrRecord, ca: str, tickets: RenewalTickets
) -> CaRequest:
    """Step 3 on an automatic route: the CA validates the names and issues; no person."""
    route = automatic_route(ctx, ca)
    assert route is not None, f"{ca} has no automatic route"
    reference = route.request(certificate_order(start, csr))
    for ticket in tickets.before_install():
        comment_once(
            ctx,
            ticket,
            "ca-requested",
            comments.ca_requested(ca, route.portal, reference, AUTOMATIC),
        )
    say(f"ordered the certificate for {start.domain} at {ca}: {reference}")
    return CaRequest(ca, reference, AUTOMATIC)


@renewal_step("collect-issued-certificate")
def collect_issued_certificate(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    tickets: RenewalTickets,
    request: CaRequest,
) -> IssuedRecord:
    """Step 4 on an automatic route: the chain, checked like a hand-delivered certificate."""
    route = automatic_route(ctx, request.ca)
    assert route is not None, f"{request.ca} has no automatic route"
    delivered = route.collect(request.request_number)
    issued = check_issued_certificate(
        delivered,
        key_fingerprint=csr.key_fingerprint,
        domain=start.domain,
        max_lifetime_days=ctx.renewal.max_lifetime_days,
        issuers=route.issuers,
        ca=request.ca,
    )
    record = issued_record(issued, f"{request.ca} ({route.portal})")
    certificate_accepted(ctx, tickets, record)
    return record


def find_archived_certificate(
    ctx: RenewalContext, ca: str, domain: str, serial: str
) -> bytes | None:
    """The certificate with `serial` a renewal archived for `domain` at `ca`, if any.

    A route revokes what it issued; the certificate's bytes are in the archive
    folder of the renewal that brought it (the endpoint serves the new one by now),
    within the years a renewal looks back.
    """
    archive = ctx.archive.archive
    for year in reuse_years(datetime.now(UTC).year):
        folder = renewal_folder(ctx.archive.root_folder, ca, year, domain)
        # A later renewal of the same year keeps it as `<domain>.old-<n>.crt`.
        for stored in archive.list_files(folder):
            if not stored.name.endswith(".crt"):
                continue
            data = archive.read_file(folder, stored.name)
            try:
                leaf = load_certificates(data, stored.name)[0]
            except CertificateError:
                continue
            if certificate_facts(leaf).serial.lstrip("0") == serial.lstrip("0"):
                return data
    return None


@renewal_step("revoke-old-certificate")
def revoke_old_certificate(ctx: RenewalContext, start: RenewalStart) -> bool:
    """Step 8 on an automatic route: revoke the old certificate as superseded.

    False when the archive does not hold it (it came before this route was
    used): then a person is asked, as on any other route.
    """
    ca = start.current_ca or ""
    route = automatic_route(ctx, ca)
    assert route is not None, f"{ca} has no automatic route"
    old = find_archived_certificate(ctx, ca, start.domain, start.old.serial)
    if old is None:
        say(f"serial {start.old.serial} is not in the archive of {ca}: asking support staff")
        return False
    route.revoke(old)
    say(f"revoked the old certificate (serial {start.old.serial}) at {ca} as superseded")
    return True


def brings_own_key(route: CaRoute | None) -> bool:
    """A route whose key does not come from the systems team (ACME generating, a .p12)."""
    return generates_key(route if isinstance(route, AutomaticRoute) else None) or bool(
        getattr(route, "brings_key", False)
    )


def p12_route(ctx: RenewalContext, ca: str) -> P12Route | None:
    route = ctx.ca_routes.get(ca)
    return route if isinstance(route, P12Route) else None


def _p12_bytes(
    ctx: RenewalContext, tickets: RenewalTickets, path: str
) -> tuple[str, bytes] | str | None:
    """The .p12 from a path on this machine, else the newest attached to a ticket."""
    limit = ctx.chain.max_attachment_bytes
    if path.strip():
        try:
            with Path(path.strip()).expanduser().open("rb") as given:
                data = given.read(limit + 1)
        except OSError as exc:
            return (
                f"cannot read {path.strip()} on the machine running the flow ({exc.strerror}): "
                "give the full path of the downloaded .p12, or attach it to the ticket"
            )
        if len(data) > limit:
            return (
                f"{path.strip()} is larger than {limit} bytes (tickets.max_attachment_bytes): "
                "a .p12 is a few KiB; give the path of the .p12 downloaded from the CA"
            )
        return path.strip(), data
    refused: list[str] = []
    for ticket in reversed(tickets.before_install()):
        read = read_attachments(ctx.tracker, ticket)
        found = newest_of_each_kind(read.files).get("pkcs12")
        if found:
            return f"{ticket} ({found[0].filename})", found[1]
        refused += read.refused
    return refused[0] if refused else None


def inventory_lines(inventory: Path, files: tuple[str, ...]) -> list[str]:
    """`inventory.yaml line 24: path: certs/seal.p12`: where the certificate's files are listed."""
    try:
        text = inventory.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [
        f"{inventory.name} line {number}: `{line.strip()}`"
        for number, line in enumerate(text, 1)
        for file in files
        if "path:" in line and (file in line or Path(file).name in line)
    ]


@renewal_step("collect-p12")
def collect_p12(
    ctx: RenewalContext,
    start: RenewalStart,
    ca: str,
    tickets: RenewalTickets,
    pasted: dict[str, str],
    attempt: int,
) -> DeliveredP12 | str:
    """Step 4-5 on a .p12 route: check the file, archive it, its password to the safe.

    All in one step, because the password exists only in this call: once the
    step succeeded, the form's stored answer is blanked (see forms.forget_answers).
    """
    route = p12_route(ctx, ca)
    assert route is not None, f"{ca} has no .p12 route"
    found = _p12_bytes(ctx, tickets, pasted.get("p12_path", ""))
    if not isinstance(found, tuple):
        problem = found or (
            f"no .p12 has been given yet: enter its path, or attach it to "
            f"{', '.join(tickets.before_install())}"
        )
        say(f"{problem}; asking support staff")
        return problem
    source, data = found
    password = pasted.get("p12_password", "")
    safe = ctx.password_safe
    if safe is None:
        raise CaError(
            "no password safe is configured: set [password_safe] path and its master password "
            "(README, CA routes), then resume; the .p12's password is kept nowhere else"
        )
    try:
        issued, _ = check_pkcs12(
            data,
            password,
            domain=start.domain,
            max_lifetime_days=route.max_lifetime_days(ctx.renewal.max_lifetime_days),
            issuers=route.issuers,
            ca=ca,
        )
    except CertificateError as exc:
        problem = f"{source}: {exc}"
        comment_once(ctx, tickets.main, f"certificate-rejected-{attempt}",
                     comments.certificate_rejected(problem))  # fmt: skip
        say(f"refused the .p12 and said why on {tickets.main}: {problem}")
        return problem
    record = issued_record(issued, source)
    setup = ctx.archive
    root = route.archive_root(start.certificate_kind)
    folder = renewal_folder(root, ca, record.not_before.year, start.domain)
    names = renewal_file_names(start.domain)
    files = {names["p12"]: data, names["crt"]: record.cert_pem.encode()}
    if record.chain_pem:
        files[names["chain"]] = record.chain_pem.encode()
    archived = archive_renewal(
        setup.archive,
        folder,
        files,
        renewal_record(start, record, tickets.by_role()),
        setup.on_conflict,
    )
    stored = tuple(sorted([f.path.rpartition("/")[2] for f in archived.files] + [MANIFEST_NAME]))
    title = safe.title.format(domain=start.domain, kind=start.certificate_kind or "", ca=ca)
    where = safe.safe.store(
        safe.group,
        title,
        password,
        f"{names['p12']} archived at {archived.location}\nserial {record.serial}, "
        f"valid until {record.not_after:%Y-%m-%d}\nrenewal {start.id}",
    )
    del password, pasted, data
    lines = inventory_lines(ctx.inventory, start.files)
    certificate_accepted(ctx, tickets, record)
    comment_once(
        ctx,
        tickets.main,
        "p12-archived",
        comments.p12_archived(archived.location, stored, where, lines),
    )
    say(f"archived {', '.join(stored)} in {archived.location}; the password is in {where}")
    return DeliveredP12(
        record, ArchiveRecord(folder=folder, location=archived.location, files=stored), where
    )
