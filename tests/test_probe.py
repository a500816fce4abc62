"""The probe library: status rules, error messages, bounded lazy scanning, time limits."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from certrenew.inventory import CertificateEntry, Inventory, Target, Thresholds, parse_inventory
from certrenew.probe import (
    RESERVED_FILES,
    ProbeResult,
    describe_connection_error,
    exit_code,
    expiry_status,
    run_scan,
    scan_targets,
    target_status,
    usable_concurrency,
)
from tests.fixtures_tls import ScanLab, refused_port, silent_port

DEFAULTS = Thresholds(warn_days=30, critical_days=7)


@pytest.mark.parametrize(
    ("days_left", "expected"),
    [
        (-1, "expired"),
        (0, "critical"),
        (6, "critical"),
        (7, "warning"),
        (29, "warning"),
        (30, "ok"),
    ],
)
def test_a_threshold_is_crossed_when_fewer_whole_days_remain(days_left: int, expected: str) -> None:
    assert expiry_status(days_left, DEFAULTS) == expected


def test_a_certificate_that_does_not_cover_its_domain_is_critical() -> None:
    assert target_status(400, False, DEFAULTS) == "critical"
    assert target_status(20, False, DEFAULTS) == "critical"
    assert target_status(-1, False, DEFAULTS) == "expired"
    assert target_status(400, True, DEFAULTS) == "ok"


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], 0),
        (["ok", "ok"], 0),
        (["ok", "warning"], 1),
        (["warning", "error"], 3),
        (["error", "critical"], 2),
        (["error", "expired", "warning"], 2),
    ],
)
def test_exit_code_precedence(statuses: list, code: int) -> None:
    assert exit_code(statuses) == code


@pytest.mark.parametrize(
    ("exc", "phrase"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "name does not resolve"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection refused"),
        (TimeoutError(), "timed out after 2.5 s"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "reset the connection"),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "closed the connection"),
    ],
)
def test_connection_errors_read_as_sentences(exc: BaseException, phrase: str) -> None:
    message = describe_connection_error(exc, "seu.example.cat:443", 2.5)
    assert phrase in message
    assert "seu.example.cat:443" in message


def _endpoint_targets(port: int, count: int, pulled: list[int]) -> Iterator[Target]:
    entry = CertificateEntry(name="many", domain="many.lab.test", endpoints=[f"127.0.0.1:{port}"])
    for _ in range(count):
        pulled[0] += 1
        yield Target(entry, "endpoint", endpoint=entry.endpoints[0])


def test_scan_pulls_targets_only_as_workers_free_up() -> None:
    """Thousands of targets must never all be in flight (or in memory) at once."""
    concurrency, total = 4, 400
    pulled = [0]
    most_ahead = 0
    seen = 0

    async def consume() -> None:
        nonlocal most_ahead, seen
        with ExitStack() as stack:
            port = refused_port(stack)
            source = _endpoint_targets(port, total, pulled)
            async for _ in scan_targets(source, DEFAULTS, concurrency=concurrency, timeout=5):
                seen += 1
                most_ahead = max(most_ahead, pulled[0] - seen)

    asyncio.run(consume())
    assert seen == total
    # In flight (one per worker) plus finished results waiting in the queue.
    assert most_ahead <= 2 * concurrency + 1


def test_a_silent_port_times_out_and_the_scan_goes_on(scan_lab: ScanLab) -> None:
    with ExitStack() as stack:
        quiet = silent_port(stack)
        far = scan_lab.cases["far"].target
        inventory = parse_inventory(
            f"""
certificates:
  - {{name: quiet, domain: quiet.lab.test, endpoints: ["127.0.0.1:{quiet}"]}}
  - {{name: far, domain: far.lab.test, endpoints: ["{far}"]}}
"""
        )
        seen: list[ProbeResult] = []
        results = run_scan(inventory, concurrency=2, timeout=0.3, on_result=seen.append)
    assert len(seen) == 2
    by_name = {r.name: r for r in results}
    assert by_name["quiet"].status == "error"
    assert "timed out after 0.3 s" in (by_name["quiet"].error or "")
    assert by_name["far"].status == "ok"


def test_file_problems_name_the_file_and_the_fix(
    scan_lab: ScanLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_UNSET_PASSWORD", raising=False)
    p12 = scan_lab.cases["file-p12"].target
    junk = tmp_path / "junk.crt"
    junk.write_bytes(b"not a certificate at all")
    inventory = Inventory(
        certificates=[
            CertificateEntry(
                name="unset",
                domain="unset.lab.test",
                files=[{"path": p12, "password_env": "LAB_UNSET_PASSWORD"}],
            ),
            CertificateEntry(name="nopw", domain="nopw.lab.test", files=[{"path": p12}]),
            CertificateEntry(
                name="gone", domain="gone.lab.test", files=[{"path": tmp_path / "gone.pem"}]
            ),
            CertificateEntry(name="folder", domain="folder.lab.test", files=[{"path": tmp_path}]),
            CertificateEntry(name="junk", domain="junk.lab.test", files=[{"path": junk}]),
        ]
    )
    errors = {r.name: r.error or "" for r in run_scan(inventory, concurrency=2, timeout=1)}
    assert "LAB_UNSET_PASSWORD is not set" in errors["unset"]
    assert "needs a password" in errors["nopw"]
    assert "file not found" in errors["gone"] and "gone.pem" in errors["gone"]
    assert "is a folder" in errors["folder"]
    assert "junk.crt" in errors["junk"]
    # The loader's own message reaches the person, never as an internal failure.
    assert not any(error.startswith("unexpected failure") for error in errors.values()), errors


def test_results_give_not_after_back_as_a_utc_datetime(scan_lab: ScanLab) -> None:
    case = scan_lab.cases["far"]
    inventory = Inventory(
        certificates=[CertificateEntry(name="far", domain=case.domain, endpoints=[case.target])]
    )
    (result,) = run_scan(inventory, concurrency=1, timeout=5)
    assert case.leaf is not None
    assert result.not_after_datetime == case.leaf.certificate.not_valid_after_utc
    assert replace(result, not_after=None).not_after_datetime is None


@pytest.mark.parametrize(
    ("requested", "limit", "usable"),
    [(64, 1024, 64), (4096, 1024, 1024 - RESERVED_FILES), (8, 40, 1)],
)
def test_concurrency_stays_under_the_open_files_limit(
    requested: int, limit: int, usable: int
) -> None:
    assert usable_concurrency(requested, limit) == usable
