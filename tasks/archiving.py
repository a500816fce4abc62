"""Runbook steps that touch the archive (SharePoint, or a local folder).

The private key is read here, at the moment it is stored, from where the
systems team left it; it is checked against the fingerprint recorded when the
CSR was accepted, so a key swapped on the ticket in between is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect.runtime import flow_run

from certrenew.adapters.archive.renewal import MANIFEST_NAME, RenewalRecord, archive_renewal
from certrenew.adapters.wiring import RenewalContext
from certrenew.errors import CertificateError
from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.pki.certs import certificate_facts, load_certificate
from certrenew.pki.csr import check_csr, check_key_matches_csr
from certrenew.pki.keyprotect import unprotected_private_key
from certrenew.renewal import (
    ArchiveRecord,
    CsrRecord,
    IssuedRecord,
    KeySource,
    RenewalStart,
    RenewalTickets,
)
from certrenew.rules import reuse_years
from certrenew.tasks.context import renewal_step, say
from certrenew.tasks.tickets import comment_once
from certrenew.templates import comments


@renewal_step("find-previous-csr")
def find_previous_csr(ctx: RenewalContext, start: RenewalStart) -> CsrRecord | None:
    """A CSR and key archived by an earlier renewal of this domain that still meet the rules.

    Looks in the folders of every configured CA for the years of the reuse window.
    """
    names = renewal_file_names(start.domain)
    archive = ctx.archive.archive
    for ca in ctx.renewal.cas:
        for year in reuse_years(datetime.now(UTC).year):
            folder = renewal_folder(ctx.archive.root_folder, ca, year, start.domain)
            present = {f.name for f in archive.list_files(folder)}
            if not {names["csr"], names["key"]} <= present:
                continue
            csr_pem = archive.read_file(folder, names["csr"])
            try:
                check_csr(csr_pem, ctx.subject.rules(), start.domain, start.old.sans)
                fingerprint = check_key_matches_csr(
                    _archived_key(ctx, folder, names["key"]), csr_pem
                )
            except CertificateError:
                continue  # an old CSR that no longer meets the rules is simply not offered
            return CsrRecord(
                csr_pem=csr_pem.decode(),
                key=KeySource("archive", folder, names["key"]),
                key_fingerprint=fingerprint,
                source=archive.location(folder),
            )
    return None


def _key_bytes(ctx: RenewalContext, csr: CsrRecord, folder: str, key_name: str) -> bytes:
    """The key from where it was left; after an interrupted archive, from the archive itself."""
    source = csr.key
    archive = ctx.archive.archive
    data: bytes | None = None
    if source.kind == "ticket":
        for attachment in ctx.tracker.attachments(source.location):
            if attachment.id == source.attachment_id:
                data = ctx.tracker.download_attachment(source.location, attachment)
        if data is None and key_name in {f.name for f in archive.list_files(folder)}:
            data = _archived_key(ctx, folder, key_name)
        if data is None:
            raise CertificateError(
                f"the key {source.name} is no longer attached to {source.location} and was not "
                "archived yet: ask the systems team to attach it again"
            )
    else:
        data = _archived_key(ctx, source.location, source.name)
    if check_key_matches_csr(data, csr.csr_pem.encode()) != csr.key_fingerprint:
        raise CertificateError(
            f"the key now at {source.location} is not the one accepted with the CSR: "
            "ask the systems team for the key generated with that CSR"
        )
    return data


def _archived_key(ctx: RenewalContext, folder: str, name: str) -> bytes:
    """A key from the archive, decrypted when the archive keeps keys encrypted."""
    passphrase = ctx.archive.key_passphrase
    return unprotected_private_key(
        ctx.archive.archive.read_file(folder, name),
        passphrase.get_secret_value() if passphrase else None,
    )


def renewal_record(
    start: RenewalStart, issued: IssuedRecord, tickets: dict[str, str]
) -> RenewalRecord:
    old = start.old
    return RenewalRecord(
        domain=start.domain,
        new_certificate=certificate_facts(load_certificate(issued.cert_pem.encode())),
        old_certificate={
            "serial": old.serial,
            "sha256_fingerprint": old.sha256,
            "not_after": old.not_after.isoformat(),
            "subject_cn": old.subject_cn,
        },
        tickets=tickets,
        flow_run_id=flow_run.get_id(),
    )


@renewal_step("archive-artifacts")
def archive_artifacts(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    issued: IssuedRecord,
    ca: str,
    tickets: RenewalTickets,
) -> ArchiveRecord:
    """Step 5: store .csr, .key, .crt (+ chain) and a manifest; then take the key off Jira."""
    setup = ctx.archive
    folder = renewal_folder(setup.root_folder, ca, issued.not_before.year, start.domain)
    names = renewal_file_names(start.domain)
    files = {
        names["csr"]: csr.csr_pem.encode(),
        names["key"]: _key_bytes(ctx, csr, folder, names["key"]),
        names["crt"]: issued.cert_pem.encode(),
    }
    if issued.chain_pem:
        files[names["chain"]] = issued.chain_pem.encode()
    passphrase = setup.key_passphrase.get_secret_value() if setup.key_passphrase else None
    archived = archive_renewal(
        setup.archive,
        folder,
        files,
        renewal_record(start, issued, tickets.by_role()),
        setup.on_conflict,
        key_passphrase=passphrase,
    )
    del files, passphrase  # the key bytes go no further than the archive
    stored = tuple(sorted([f.path.rpartition("/")[2] for f in archived.files] + [MANIFEST_NAME]))
    comment_once(ctx, tickets.main, "archived", comments.archived(archived.location, stored))
    if csr.key.kind == "ticket" and ctx.chain.delete_key_attachment:
        for attachment in ctx.tracker.attachments(csr.key.location):
            if attachment.id == csr.key.attachment_id:
                ctx.tracker.delete_attachment(csr.key.location, attachment)
        comment_once(
            ctx,
            csr.key.location,
            "key-removed",
            comments.key_removed(csr.key.name, archived.location),
        )
        say(f"removed {csr.key.name} from {csr.key.location}: the archive keeps it")
    say(f"archived {', '.join(stored)} in {archived.location}; commented on {tickets.main}")
    return ArchiveRecord(
        folder=folder,
        location=archived.location,
        files=stored,
        key_protected=setup.key_passphrase is not None,
    )
