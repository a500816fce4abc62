"""Runbook steps that touch the archive (SharePoint, or a local folder).

The private key is read here, at the moment it is stored, from where the
systems team left it; it is checked against the fingerprint recorded when the
CSR was accepted, so a key swapped on the ticket in between is refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from certrenew.csr import check_csr, check_key_matches_csr
from certrenew.errors import CertificateError
from certrenew.renewal import ArchiveRecord, CsrRecord, IssuedRecord, KeySource, RenewalStart
from tasks.archive import renewal_folder, store_file
from tasks.context import RenewalContext, renewal_step
from tasks.tickets import comment_once
from templates import comments


def file_names(domain: str) -> dict[str, str]:
    base = domain.replace("*", "wildcard")
    return {kind: f"{base}.{kind}" for kind in ("csr", "key", "crt")} | {
        "chain": f"{base}.chain.pem"
    }


@renewal_step("find-previous-csr")
def find_previous_csr(ctx: RenewalContext, start: RenewalStart) -> CsrRecord | None:
    """A CSR and key archived by an earlier renewal of this domain that still meet the rules.

    Looks in this year's and the two previous years' folders of every configured CA.
    """
    subject, _, renewal = ctx.settings.for_renewal()
    names = file_names(start.domain)
    year = datetime.now(UTC).year
    archive = ctx.archive.archive
    for ca in renewal.cas:
        for candidate_year in (year, year - 1, year - 2):
            folder = renewal_folder(ctx.archive.root_folder, ca, candidate_year, start.domain)
            present = {f.name for f in archive.list_files(folder)}
            if not {names["csr"], names["key"]} <= present:
                continue
            csr_pem = archive.read_file(folder, names["csr"])
            try:
                check_csr(csr_pem, subject, start.domain)
                fingerprint = check_key_matches_csr(
                    archive.read_file(folder, names["key"]), csr_pem
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
    data: bytes | None = None
    if source.kind == "ticket":
        for attachment in ctx.tracker.attachments(source.location):
            if attachment.id == source.attachment_id:
                data = ctx.tracker.download_attachment(source.location, attachment)
        if data is None and key_name in {f.name for f in ctx.archive.archive.list_files(folder)}:
            data = ctx.archive.archive.read_file(folder, key_name)
        if data is None:
            raise CertificateError(
                f"the key {source.name} is no longer attached to {source.location} and was not "
                "archived yet: ask the systems team to attach it again"
            )
    else:
        data = ctx.archive.archive.read_file(source.location, source.name)
    if check_key_matches_csr(data, csr.csr_pem.encode()) != csr.key_fingerprint:
        raise CertificateError(
            f"the key now at {source.location} is not the one accepted with the CSR: "
            "ask the systems team for the key generated with that CSR"
        )
    return data


def manifest(
    start: RenewalStart, csr: CsrRecord, issued: IssuedRecord, ca: str, tickets: list[str]
) -> bytes:
    """What an auditor wants beside the files; deterministic, and free of key material."""
    return (
        json.dumps(
            {
                "domain": start.domain,
                "renewal": start.id,
                "ca": ca,
                "old": {"serial": start.old.serial, "sha256": start.old.sha256},
                "new": {
                    "serial": issued.serial,
                    "sha256": issued.sha256,
                    "not_after": issued.not_after.isoformat(),
                },
                "key_fingerprint": csr.key_fingerprint,
                "tickets": tickets,
            },
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        )
        + "\n"
    ).encode()


@renewal_step("archive-artifacts")
def archive_artifacts(
    ctx: RenewalContext,
    start: RenewalStart,
    csr: CsrRecord,
    issued: IssuedRecord,
    ca: str,
    tickets: list[str],
) -> ArchiveRecord:
    """Step 5: store .csr, .key, .crt (+ chain) and a manifest; then take the key off Jira."""
    setup = ctx.archive
    folder = renewal_folder(setup.root_folder, ca, issued.not_before.year, start.domain)
    names = file_names(start.domain)
    files = {
        names["csr"]: csr.csr_pem.encode(),
        names["key"]: _key_bytes(ctx, csr, folder, names["key"]),
        names["crt"]: issued.cert_pem.encode(),
    }
    if issued.chain_pem:
        files[names["chain"]] = issued.chain_pem.encode()
    files["manifest.json"] = manifest(start, csr, issued, ca, tickets)
    for name, data in files.items():
        store_file(setup.archive, folder, name, data, setup.on_conflict)
    del files[names["key"]]  # drop the key bytes as soon as they are stored
    location = setup.archive.location(folder)
    stored = tuple(sorted([*files, names["key"]]))
    comment_once(ctx, tickets[0], "archived", comments.archived(location, stored))
    if csr.key.kind == "ticket" and ctx.settings.jira.delete_key_attachment:
        for attachment in ctx.tracker.attachments(csr.key.location):
            if attachment.id == csr.key.attachment_id:
                ctx.tracker.delete_attachment(csr.key.location, attachment)
        comment_once(
            ctx, csr.key.location, "key-removed", comments.key_removed(csr.key.name, location)
        )
    return ArchiveRecord(folder=folder, location=location, files=stored)
