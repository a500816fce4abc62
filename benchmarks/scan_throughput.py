"""Scan throughput and memory against loopback TLS servers (run with `make bench`).

Throughput is reported as a ratio to a baseline measured in the same run on
the same servers: a plain sequential loop of blocking `ssl` handshakes, the
way a script would check certificates one by one. Memory is the peak RSS a
scan adds on top of its loaded inventory, each measured in a fresh process;
streaming 2,000 and 10,000 targets should cost the same, because workers
pull targets lazily and results are not kept.

The TLS servers run in their own process so that the client being measured
has its own core.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from cryptography import x509

from certrenew.inventory import CertificateEntry, Endpoint, Inventory, targets
from certrenew.lab.tls import LocalCA, TLSServer
from certrenew.probe import run_scan, scan_targets

DOMAIN = "bench.lab.test"


def serve(count: int, pipe: Connection) -> None:
    """Child process: `count` TLS servers (one RSA, the rest ECDSA) until told to stop."""
    ca = LocalCA("certrenew bench CA")
    leaves = [ca.issue(DOMAIN, key_type="rsa" if i == 0 else "ecdsa") for i in range(count)]
    servers = [TLSServer(leaf).start() for leaf in leaves]
    pipe.send([s.port for s in servers])
    pipe.recv()
    for server in servers:
        server.stop()


def bench_inventory(ports: list[int], count: int) -> Inventory:
    return Inventory(
        certificates=[
            CertificateEntry(
                name=f"bench-{i}",
                domain=DOMAIN,
                endpoints=[Endpoint(host="127.0.0.1", port=ports[i % len(ports)])],
            )
            for i in range(count)
        ]
    )


def sequential_ssl_loop(inventory: Inventory) -> int:
    """The baseline: one blocking handshake after another, leaf read and parsed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    read = 0
    for target in targets(inventory):
        assert target.endpoint is not None
        with (
            socket.create_connection((target.endpoint.host, target.endpoint.port), 10) as raw,
            context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            x509.load_der_x509_certificate(der).not_valid_after_utc  # noqa: B018
            read += 1
    return read


def timed(label: str, count: int, work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    rate = count / (time.perf_counter() - start)
    print(f"  {label:<38} {rate:8.0f} targets/s")
    return rate


def peak_rss_kib() -> int:
    """This process's high-water RSS (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark needs Linux")


def peak_rss_of_scan(ports: list[int], count: int, concurrency: int, keep: bool) -> None:
    """Child process: print the peak RSS the scan adds over the loaded inventory."""
    inventory = bench_inventory(ports, count)
    before = peak_rss_kib()
    if keep:
        statuses: Counter[str] = Counter(
            r.status for r in run_scan(inventory, concurrency=concurrency, timeout=10)
        )
    else:

        async def stream() -> Counter[str]:
            seen: Counter[str] = Counter()
            async for result in scan_targets(
                targets(inventory), inventory.defaults, concurrency=concurrency, timeout=10
            ):
                seen[result.status] += 1
            return seen

        statuses = asyncio.run(stream())
    peak = peak_rss_kib()
    mode = "all results kept (CLI)" if keep else "streamed"
    print(
        f"  {count:>6} targets, concurrency {concurrency:>3}, {mode:<22} "
        f"inventory {before / 1024:6.1f} MiB, scan adds {(peak - before) / 1024:6.1f} MiB "
        f"(peak {peak / 1024:6.1f} MiB) {dict(statuses)}"
    )


def in_fresh_process(spawn: multiprocessing.context.SpawnContext, *args: Any) -> None:
    child = spawn.Process(target=peak_rss_of_scan, args=args)
    child.start()
    child.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--memory-targets", type=int, default=10_000)
    parser.add_argument("--servers", type=int, default=4)
    args = parser.parse_args(argv)

    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    server_process = spawn.Process(target=serve, args=(args.servers, theirs), daemon=True)
    server_process.start()
    try:
        ports: list[int] = ours.recv()
        inventory = bench_inventory(ports, args.targets)
        print(f"throughput, {args.targets} targets on {len(ports)} loopback TLS servers:")
        baseline = timed(
            "baseline: sequential ssl loop", args.targets, lambda: sequential_ssl_loop(inventory)
        )
        for concurrency in (1, 64, 256):

            def scan(c: int = concurrency) -> None:
                results = run_scan(inventory, concurrency=c, timeout=10)
                failed = [r.error for r in results if r.status == "error"]
                assert not failed, failed[:3]

            rate = timed(f"certrenew scan, concurrency {concurrency}", args.targets, scan)
            print(f"  {'':<38} {rate / baseline:8.2f} x baseline")
        print("peak memory (each in a fresh process):")
        for count, concurrency, keep in [
            (args.targets, 64, False),
            (args.memory_targets, 64, False),
            (args.memory_targets, 256, False),
            (args.memory_targets, 64, True),
        ]:
            in_fresh_process(spawn, ports, count, concurrency, keep)
    finally:
        ours.send("stop")
        server_process.join(timeout=30)
