"""The baseline the scan is measured against: the least a TLS expiry check can do.

For each target it connects, handshakes with SNI, takes the leaf certificate
and reads its notAfter, at a fixed concurrency, with nothing else: no
inventory model, no statuses, no report. Run as a whole process, like the
scan, so both pay their start-up and imports:

    python -m benchmarks.minimal_client TARGETS_FILE --concurrency 64

`TARGETS_FILE` has one `host port server_name` per line. Prints the number of
certificates read and the number of failures.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from pathlib import Path

from cryptography import x509


async def read_expiry(
    host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float
) -> bool:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=server_name),
            timeout,
        )
    except (OSError, TimeoutError):
        return False
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        x509.load_der_x509_certificate(der).not_valid_after_utc  # noqa: B018
        return True
    finally:
        writer.close()


async def read_all(lines: list[str], concurrency: int, timeout: float) -> tuple[int, int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    queue = iter(lines)
    read = failed = 0

    async def worker() -> None:
        nonlocal read, failed
        for line in queue:
            host, port, server_name = line.split()
            if await read_expiry(host, int(port), server_name, context, timeout):
                read += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return read, failed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.minimal_client")
    parser.add_argument("targets", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    lines = [line for line in args.targets.read_text().splitlines() if line.strip()]
    read, failed = asyncio.run(read_all(lines, args.concurrency, args.timeout))
    print(f"{read} read, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
