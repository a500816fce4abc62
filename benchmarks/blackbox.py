"""Prometheus's blackbox_exporter probing the bed's targets: the scan's third baseline.

The exporter (`prometheus-blackbox-exporter`, Debian's package) reads a
certificate's expiry with a `tcp` probe over TLS, one HTTP request to its
`/probe` endpoint per target, as Prometheus would scrape it. Each bed target
is its own SNI virtual host, and in this version the server name comes only
from the module (a `hostname` parameter does not reach a TCP probe's TLS), so
the configuration holds one module per target: `t<line of targets.txt>`.

Measured per run on a fresh exporter (its configuration read, excluded): the
wall time from the first request to the last answer, at the same
concurrency as the scan (that many keep-alive connections, each sending its
next request when the last one is answered), the exporter's user + system
CPU over that time, and its peak RSS (VmHWM, which includes holding one
module per target). The requests come from this benchmark's own process,
whose CPU is not counted: what Prometheus spends scraping is not part of the
probe either. Every answer must say `probe_success 1`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

LABEL = "prometheus-blackbox-exporter"


def installed() -> str | None:
    return shutil.which(LABEL)


def write_config(targets: Path, folder: Path) -> Path:
    """One TLS module per target, named after its line, with the target's server name."""
    lines = [line.split() for line in targets.read_text().splitlines() if line.strip()]
    modules = "".join(
        f"  t{index}:\n    prober: tcp\n    timeout: 10s\n    tcp:\n      tls: true\n"
        f"      tls_config: {{insecure_skip_verify: true, server_name: {name}}}\n"
        for index, (_, _, name) in enumerate(lines)
    )
    config = folder / "blackbox.yml"
    config.write_text("modules:\n" + modules)
    return config


def probe_all(
    binary: str, config: Path, targets: Path, port: int, concurrency: int
) -> tuple[float, float, float]:
    """Wall seconds, the exporter's CPU seconds and its peak RSS in MiB, for one run."""
    exporter = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_healthy(exporter, port)
        lines = [line.split() for line in targets.read_text().splitlines() if line.strip()]
        cpu_before = _cpu_seconds(exporter.pid)
        start = time.perf_counter()
        succeeded = asyncio.run(_requests(port, lines, concurrency))
        wall = time.perf_counter() - start
        cpu = _cpu_seconds(exporter.pid) - cpu_before
        peak = _peak_rss_mib(exporter.pid)
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
    if succeeded != len(lines):
        sys.exit(f"blackbox_exporter read {succeeded} of {len(lines)} targets")
    return wall, cpu, peak


def _wait_healthy(exporter: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if exporter.poll() is not None:
            err = exporter.stderr.read().decode() if exporter.stderr else ""
            sys.exit(f"blackbox_exporter stopped: {err[-500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("blackbox_exporter did not answer within 120 s")


async def _requests(port: int, lines: list[list[str]], concurrency: int) -> int:
    pending = iter(enumerate(lines))
    succeeded = 0

    async def connection() -> None:
        nonlocal succeeded
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index, (host, target_port, _) in pending:
                address = f"[{host}]" if ":" in host else host
                target = quote(f"{address}:{target_port}")
                writer.write(
                    f"GET /probe?module=t{index}&target={target} HTTP/1.1\r\n"
                    "Host: 127.0.0.1\r\n\r\n".encode()
                )
                body = await _response_body(reader)
                succeeded += b"\nprobe_success 1\n" in body
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return succeeded


async def _response_body(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 response's body, sized by Content-Length or sent in chunks."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":", 1)[1]))
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readexactly(2)
    return b"".join(chunks)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
