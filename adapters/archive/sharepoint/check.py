"""`certrenew check sharepoint`: walk the path a renewal takes, one step at a time.

Going live is configuration; this tells a team which part of it is wrong
before the first renewal needs the archive. Each step depends on the one
before, so the first failure ends the walk and the rest are reported skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from certrenew.adapters.archive.sharepoint import SharePointArchive
from certrenew.config import SharePointSettings
from certrenew.errors import CertRenewError

CHECK_FOLDER = "_certrenew_check"


@dataclass(frozen=True)
class CheckResult:
    step: str
    status: str  # "ok" | "failed" | "skipped"
    detail: str


def check_sharepoint(
    settings: SharePointSettings, sleep: Callable[[float], None] = time.sleep
) -> list[CheckResult]:
    results: list[CheckResult] = []
    archive: SharePointArchive | None = None
    folder = f"{settings.root_folder.strip('/')}/{CHECK_FOLDER}"
    probe = f"probe-{uuid.uuid4().hex[:12]}.txt"
    content = f"certrenew check {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n".encode()

    def configuration() -> str:
        nonlocal archive
        archive = SharePointArchive.from_settings(settings, sleep=sleep)
        cert = archive.token_source.certificate
        days = (cert.not_after - datetime.now(UTC)).days
        return (
            f"app {settings.client_id}, certificate {cert.thumbprint} "
            f"(expires {cert.not_after:%Y-%m-%d}, in {days} days)"
        )

    def token() -> str:
        assert archive is not None
        archive.token_source()
        return f"from {archive.token_source.authority} for {archive.token_source.scope}"

    def site() -> str:
        assert archive is not None
        return f"'{archive.site_title()}' at {settings.site_url}"

    def library() -> str:
        assert archive is not None
        return f"'{archive.library_title()}' (URL name {settings.library})"

    def write() -> str:
        assert archive is not None
        archive.ensure_folder(folder)
        archive.write_file(folder, probe, content)
        if archive.read_file(folder, probe) != content:
            raise CertRenewError("the probe file read back differs from what was written")
        return f"{archive.location(folder)}/{probe}"

    def delete() -> str:
        assert archive is not None
        archive.delete_file(folder, probe)
        return probe

    steps: list[tuple[str, Callable[[], str]]] = [
        ("configuration", configuration),
        ("access token", token),
        ("site", site),
        ("library", library),
        ("write probe file", write),
        ("delete probe file", delete),
    ]
    for name, step in steps:
        if results and results[-1].status != "ok":
            results.append(CheckResult(name, "skipped", "an earlier step failed"))
            continue
        try:
            results.append(CheckResult(name, "ok", step()))
        except CertRenewError as exc:
            results.append(CheckResult(name, "failed", str(exc)))
    return results
