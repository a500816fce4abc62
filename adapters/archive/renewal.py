"""What one renewal leaves in the archive: its `.csr`, `.key`, `.crt` and a `manifest.json`.

Backend-independent: it works through `store_file`, so the no-overwrite rule
and the read-back check apply to every file. The manifest lets an auditor tie
the folder to the certificates and the Jira ticket chain without opening the
files; it never holds key material. It is deterministic (sorted keys, no
timestamps of its own), so archiving the same renewal again stores nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from certrenew.adapters.archive import Archive, ArchivedFile, store_file
from certrenew.pki.certs import CertificateFacts
from certrenew.pki.keyprotect import protect_private_key

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class RenewalRecord:
    """The facts of a renewal the manifest records."""

    domain: str
    new_certificate: CertificateFacts
    # The certificate replaced, as far as it was seen in service (see certificate_summary).
    old_certificate: Mapping[str, Any] | None = None
    tickets: Mapping[str, str] = field(default_factory=dict)  # role → key, e.g. "csr": "SIS-12"
    flow_run_id: str | None = None


@dataclass(frozen=True)
class ArchivedRenewal:
    location: str
    files: tuple[ArchivedFile, ...]
    manifest: ArchivedFile


def manifest_bytes(record: RenewalRecord, files: list[ArchivedFile]) -> bytes:
    """The manifest, byte for byte the same for the same renewal."""
    document = {
        "format": MANIFEST_FORMAT,
        "domain": record.domain,
        "new_certificate": certificate_summary(record.new_certificate),
        "old_certificate": dict(record.old_certificate) if record.old_certificate else None,
        "tickets": dict(record.tickets),
        "flow_run_id": record.flow_run_id,
        "files": [
            {"name": f.path.rpartition("/")[2], "size": f.size, "sha256": f.sha256}
            for f in sorted(files, key=lambda f: f.path)
        ],
    }
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def certificate_summary(facts: CertificateFacts) -> dict[str, Any]:
    return {
        "serial": facts.serial,
        "sha256_fingerprint": facts.sha256,
        "not_before": facts.not_before.isoformat(),
        "not_after": facts.not_after.isoformat(),
        "subject_cn": facts.subject_cn,
        "sans": None if facts.sans is None else list(facts.sans),
        "issuer": facts.issuer,
    }


def archive_renewal(
    archive: Archive,
    folder: str,
    files: Mapping[str, bytes],
    record: RenewalRecord,
    on_conflict: Literal["keep_old", "refuse"] = "keep_old",
    key_passphrase: str | None = None,
) -> ArchivedRenewal:
    """Store each file (`*.key` encrypted when a passphrase is given), then the manifest.

    An encrypted key already archived for this renewal is reused, so a second
    run finds the same bytes and changes nothing.
    """
    archive.ensure_folder(folder)
    present = {f.name for f in archive.list_files(folder)}
    stored: list[ArchivedFile] = []
    for name, data in sorted(files.items()):
        if name.endswith(".key"):
            previous = archive.read_file(folder, name) if name in present else None
            data = protect_private_key(data, key_passphrase, previous)
        stored.append(store_file(archive, folder, name, data, on_conflict))
    manifest = manifest_bytes(record, stored)
    if MANIFEST_NAME in present:
        earlier = archive.read_file(folder, MANIFEST_NAME)
        manifest = _kept_manifest(earlier, record, stored, manifest)
    written = store_file(archive, folder, MANIFEST_NAME, manifest, on_conflict)
    return ArchivedRenewal(archive.location(folder), tuple(stored), written)


def _kept_manifest(
    earlier: bytes, record: RenewalRecord, stored: list[ArchivedFile], manifest: bytes
) -> bytes:
    """The manifest already archived when it differs from `manifest` only in its run.

    A renewal whose run was killed after archiving goes on in a new run, which
    archives again: the files are the same, and the manifest keeps naming the
    run that archived them first instead of being set aside as a conflict.
    """
    try:
        run = json.loads(earlier).get("flow_run_id")
    except (ValueError, AttributeError):
        return manifest
    same_but_run = manifest_bytes(replace(record, flow_run_id=run), stored)
    return earlier if earlier == same_but_run else manifest
