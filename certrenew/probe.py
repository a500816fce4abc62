"""Step 0 of the runbook: read the real expiry of every certificate in the inventory.

Endpoints are probed the way a person checks them in a browser, minus the
trust decision: verification is off so that expired, self-signed and
untrusted certificates are read too (they are exactly the ones we must see).
Files are read in PEM, DER or PKCS#12 form. Expiry, serial, names and
fingerprint come from the certificate's outer structure, as OpenSSL reads it,
so a certificate with an extension no library can parse still shows its
expiry; when that extension is the subjectAltName, whether it covers the
domain is unknown, the result carries a note, and the status follows from
the expiry alone.

The scan is asyncio with a fixed pool of workers fed lazily from the
inventory's target iterator, so 10,000 targets cost no more memory in flight
than `concurrency` targets. Every failure becomes a result with a message a
person understands; one bad target never stops the scan.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from certrenew.errors import CertificateError, ProbeError
from certrenew.inventory import CertificateFile, Endpoint, Inventory, Target, Thresholds, targets
from certrenew.pki.served import served_facts

Status = Literal["ok", "warning", "critical", "expired", "error"]
STATUSES: tuple[Status, ...] = ("expired", "critical", "warning", "ok", "error")


@dataclass(frozen=True, slots=True)  # a scan of 10,000 targets keeps them all for the sort
class ProbeResult:
    """What one target showed; the fields are exactly the `scan --json` keys."""

    name: str
    domain: str
    target: str
    kind: Literal["endpoint", "file"]
    not_after: str | None
    days_left: int | None
    status: Status
    subject_cn: str | None
    sans: list[str] | None
    issuer: str | None
    serial: str | None
    sha256: str | None
    covers_domain: bool | None
    error: str | None
    # What a person should know about a certificate that was read, e.g. that its names are unknown.
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy was a tenth of the scan's own CPU.
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def not_after_datetime(self) -> datetime | None:
        """`not_after` as a datetime, for code that compares or stores it."""
        return datetime.fromisoformat(self.not_after) if self.not_after else None


_FIELDS = tuple(field.name for field in fields(ProbeResult))


def expiry_status(days_left: int, thresholds: Thresholds) -> Status:
    """Expiry alone: `expired` once past notAfter, else by whole days left.

    A threshold of N days is crossed when fewer than N whole days remain, so
    with the default 30/7 a certificate turns `warning` 30 days before expiry
    and `critical` 7 days before.
    """
    if days_left < 0:
        return "expired"
    if days_left < thresholds.critical_days:
        return "critical"
    if days_left < thresholds.warn_days:
        return "warning"
    return "ok"


def target_status(days_left: int, covers: bool | None, thresholds: Thresholds) -> Status:
    """The status a monitor should raise for one target.

    A certificate that does not cover its domain makes every client refuse
    it, which is an outage now, so it counts as `critical` however far its
    expiry is (an expired one stays `expired`). When its names cannot be read
    (`covers` None) the expiry alone decides: a guess either way would lie.
    """
    status = expiry_status(days_left, thresholds)
    if covers is False and status in ("ok", "warning"):
        return "critical"
    return status


def exit_code(statuses: Iterable[Status]) -> int:
    """Monitoring-plugin convention: 2 beats 3 beats 1 beats 0."""
    seen = set(statuses)
    if seen & {"critical", "expired"}:
        return 2
    if "error" in seen:
        return 3
    if "warning" in seen:
        return 1
    return 0


def sort_key(result: ProbeResult) -> tuple[int, str, str, str]:
    """Targets that could not be checked first (they may be the worst), then soonest expiry."""
    checked = 0 if result.not_after is None else 1
    return (checked, result.not_after or "", result.name, result.target)


def _client_context() -> ssl.SSLContext:
    """Verification off, every protocol and cipher on: read any certificate a server shows."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def describe_connection_error(exc: BaseException, target: str, timeout: float) -> str:
    """Turn what the socket and ssl layers raise into a sentence for the team."""
    if isinstance(exc, TimeoutError):
        return (
            f"timed out after {timeout:g} s (connect + TLS handshake) at {target}: the host does "
            "not answer, a firewall drops the traffic, or the service is hung"
        )
    if isinstance(exc, socket.gaierror):
        return f"name does not resolve: {target} (DNS): check the host name in the inventory"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused at {target}: nothing listens there (service down or wrong port)"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return (
                f"not TLS: {target} answered in plain text (plain HTTP on this port?): "
                "check the port in the inventory"
            )
        if isinstance(exc, ssl.SSLEOFError):
            return (
                f"{target} closed the connection during the TLS handshake: not TLS, or no "
                "certificate configured for this server name"
            )
        return f"TLS handshake with {target} failed: {reason or exc}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return (
            f"{target} reset the connection during the TLS handshake: not TLS, or the "
            "server refuses this client"
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"{target} is unreachable: no route to the host ({os.strerror(exc.errno)})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot connect to {target}: {exc.strerror}"
    return f"cannot check {target}: {type(exc).__name__}: {exc}"


async def _ready(
    fd: int,
    add: Callable[[int, Callable[[], object]], object],
    remove: Callable[[int], object],
) -> None:
    """Until the event loop sees `fd` ready (`add`/`remove`: its reader or writer calls)."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:  # the loop may call it again before `remove` runs
        if not ready.done():
            ready.set_result(None)

    add(fd, wake)
    try:
        await ready
    finally:
        remove(fd)


async def _connected_socket(host: str, port: int) -> socket.socket:
    """A non-blocking socket connected to the first of `host`'s addresses that answers.

    An IP address is used as it is; a host name is resolved off the loop's
    thread, as asyncio's own connections do. When no address answers, the
    first failure is raised (the one a person checks first).
    """
    loop = asyncio.get_running_loop()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    first: OSError | None = None
    for family, kind, protocol, _, address in infos:
        sock = socket.socket(family, kind, protocol)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            first = first or exc
        except BaseException:
            sock.close()
            raise
    raise first or OSError(f"{host} has no address")


async def _handshake(
    sock: socket.socket, context: ssl.SSLContext, server_name: str | None
) -> bytes:
    """The TLS handshake on a connected socket, driven by the event loop; the leaf's DER.

    OpenSSL does the work on the socket itself: asyncio's TLS transport would
    add a 256 KiB read buffer and a Python state machine per connection, which
    at 256 connections in flight is most of the scan's memory and a good part
    of its CPU, for data a handshake never reads.
    """
    loop = asyncio.get_running_loop()
    with context.wrap_socket(
        sock, server_hostname=server_name, do_handshake_on_connect=False
    ) as tls:
        fd = tls.fileno()
        # Watched for reading once for the whole handshake: the server's flight comes
        # in several reads, and adding and removing the watch for each was two
        # system calls per read.
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, wake)
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await readable
                    readable = loop.create_future()
                except ssl.SSLWantWriteError:
                    await _ready(fd, loop.add_writer, loop.remove_writer)
        finally:
            loop.remove_reader(fd)
        # Closed without a polite close_notify: a bad peer could hold that forever.
        return tls.getpeercert(binary_form=True) or b""


async def fetch_served_certificate(
    host: str, port: int, server_name: str | None, timeout: float, context: ssl.SSLContext
) -> bytes:
    """DER of the leaf certificate the endpoint serves for `server_name`."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            sock = await _connected_socket(host, port)
            try:
                der = await _handshake(sock, context, server_name or None)
            finally:
                sock.close()
    except (OSError, TimeoutError) as exc:
        raise ProbeError(describe_connection_error(exc, target, timeout)) from None
    if not der:
        raise ProbeError(f"{target} completed the TLS handshake but showed no certificate")
    return der


def read_certificate_file(file: CertificateFile) -> bytes:
    """DER of the certificate in a PEM, DER or PKCS#12 file; its password from the environment."""
    password = None
    if file.password_env:
        password = os.environ.get(file.password_env)
        if password is None:
            raise ProbeError(
                f"{file.path}: the password variable {file.password_env} is not set: "
                "set it in the scan's environment"
            )
    try:
        data = Path(file.path).read_bytes()
    except FileNotFoundError:
        raise ProbeError(f"{file.path}: file not found: fix the path in the inventory") from None
    except IsADirectoryError:
        raise ProbeError(f"{file.path}: is a folder, not a certificate file") from None
    except OSError as exc:
        raise ProbeError(f"{file.path}: unreadable file: {exc.strerror}") from None
    from certrenew.pki.certs import load_certificate  # cryptography: only for files

    try:
        return load_certificate(data, password, source=str(file.path))
    except CertificateError as exc:
        raise ProbeError(str(exc)) from None


def result_for(target: Target, thresholds: Thresholds, der: bytes, now: datetime) -> ProbeResult:
    try:
        facts = served_facts(der)
    except CertificateError as exc:
        raise ProbeError(f"{target.label}: {exc}") from None
    entry = target.entry
    days_left = facts.days_left(now)
    covers = facts.covers(entry.domain)
    return ProbeResult(
        name=entry.name,
        domain=entry.domain,
        target=target.label,
        kind=target.kind,
        not_after=facts.not_after.astimezone(UTC).isoformat(),
        days_left=days_left,
        status=target_status(days_left, covers, thresholds),
        subject_cn=facts.subject_cn,
        sans=None if facts.sans is None else list(facts.sans),
        issuer=facts.issuer,
        serial=facts.serial,
        sha256=facts.sha256,
        covers_domain=covers,
        error=None,
        note=f"{facts.note}: names unknown, status from the expiry alone" if facts.note else None,
    )


def error_result(target: Target, message: str) -> ProbeResult:
    return ProbeResult(
        name=target.entry.name,
        domain=target.entry.domain,
        target=target.label,
        kind=target.kind,
        not_after=None,
        days_left=None,
        status="error",
        subject_cn=None,
        sans=[],
        issuer=None,
        serial=None,
        sha256=None,
        covers_domain=None,
        error=message,
    )


async def probe_target(
    target: Target,
    defaults: Thresholds,
    *,
    timeout: float,
    now: datetime,
    context: ssl.SSLContext,
) -> ProbeResult:
    """Probe one target; never raises, so one bad target cannot stop a scan."""
    try:
        if target.endpoint is not None:
            endpoint: Endpoint = target.endpoint
            der = await fetch_served_certificate(
                endpoint.host,
                endpoint.port,
                target.entry.server_name(endpoint),
                timeout,
                context,
            )
        else:
            assert target.file is not None
            # PKCS#12 costs ~45 ms of CPU: keep it off the loop's thread.
            der = await asyncio.to_thread(read_certificate_file, target.file)
        return result_for(target, target.entry.thresholds(defaults), der, now)
    except ProbeError as exc:
        return error_result(target, str(exc))
    except Exception as exc:  # a bug or a surprise must not end the whole scan
        return error_result(target, f"unexpected failure: {type(exc).__name__}: {exc}")


# File descriptors kept free for everything else the process has open.
RESERVED_FILES = 64


def usable_concurrency(requested: int, open_files_limit: int | None = None) -> int:
    """`requested`, but never more connections than the process may open.

    Past the limit every extra connection fails with "too many open files",
    which would report healthy endpoints as errors.
    """
    if open_files_limit is None:
        open_files_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files_limit == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, open_files_limit - RESERVED_FILES))


async def scan_targets(
    items: Iterable[Target],
    defaults: Thresholds,
    *,
    concurrency: int,
    timeout: float,
    now: datetime | None = None,
) -> AsyncIterator[ProbeResult]:
    """Results in completion order, from `concurrency` workers sharing one iterator.

    Workers pull the next target only when they are free, so at most
    `concurrency` targets are in flight and the iterator is never drained
    up front. `concurrency` is lowered to what the open-files limit allows.
    """
    concurrency = usable_concurrency(concurrency)
    source = iter(items)
    context = _client_context()
    moment = now or datetime.now(UTC)
    done = object()
    results: asyncio.Queue[ProbeResult | object] = asyncio.Queue(maxsize=concurrency)

    async def worker() -> None:
        for target in source:
            result = await probe_target(
                target, defaults, timeout=timeout, now=moment, context=context
            )
            await results.put(result)
        await results.put(done)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        running = len(workers)
        while running:
            item = await results.get()
            if item is done:
                running -= 1
            else:
                assert isinstance(item, ProbeResult)
                yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def target_count(inventory: Inventory) -> int:
    return sum(len(e.endpoints) + len(e.files) for e in inventory.certificates)


def run_scan(
    inventory: Inventory,
    *,
    concurrency: int,
    timeout: float,
    on_result: Callable[[ProbeResult], None] | None = None,
    now: datetime | None = None,
) -> list[ProbeResult]:
    """The whole inventory, sorted soonest expiry first; `on_result` sees each as it lands."""

    async def collect() -> list[ProbeResult]:
        collected: list[ProbeResult] = []
        async for result in scan_targets(
            targets(inventory),
            inventory.defaults,
            concurrency=concurrency,
            timeout=timeout,
            now=now,
        ):
            collected.append(result)
            if on_result is not None:
                on_result(result)
        return collected

    return sorted(asyncio.run(collect()), key=sort_key)
