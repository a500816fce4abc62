"""A scan lab on loopback: real TLS servers, bad ports and certificate files, built at test time.

Every case is one inventory entry with one target, so a JSON result maps back
to the case by its name. Offsets are whole days plus twelve hours, so the
expected `days_left` cannot flip while the tests run.
"""

from __future__ import annotations

import os
import secrets
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from certrenew.lab.tls import KeyType, LeafCertificate, LocalCA, TLSServer

P12_PASSWORD_ENV = "LAB_SEAL_P12_PASSWORD"
P12_WRONG_PASSWORD_ENV = "LAB_SEAL_P12_WRONG_PASSWORD"


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Case:
    """One inventory entry of the lab and what the scan must report for it."""

    name: str
    domain: str
    target: str
    kind: str
    status: str
    leaf: LeafCertificate | None = None
    sans: tuple[str, ...] = ()
    days_left: int | None = None
    covers: bool | None = None
    error: str | None = None  # a phrase the error message must contain
    endpoint: dict[str, object] | None = None
    file: dict[str, object] | None = None


class PlainHTTPServer(socketserver.ThreadingTCPServer):
    """Answers anything with an HTTP 400 at once, as a web server on a plain port does."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answer400)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Answer400(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(4096)
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def silent_port(stack: ExitStack) -> int:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return int(sock.getsockname()[1])


def refused_port(stack: ExitStack) -> int:
    """A port held by a bound socket that does not listen: connections are refused."""
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    return int(sock.getsockname()[1])


@dataclass
class ScanLab:
    ca: LocalCA
    folder: Path
    cases: dict[str, Case] = field(default_factory=dict)
    p12_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    wrong_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @property
    def env(self) -> dict[str, str]:
        return {P12_PASSWORD_ENV: self.p12_password, P12_WRONG_PASSWORD_ENV: self.wrong_password}

    def issue(
        self, label: str, days: float, key_type: KeyType = "ecdsa", **kwargs: Any
    ) -> LeafCertificate:
        domain = f"{label}.lab.test"
        return self.ca.issue(
            domain,
            [domain, f"alt-{label}.lab.test"],
            key_type=key_type,
            not_after=datetime.now(UTC) + timedelta(days=days),
            **kwargs,
        )

    def add(self, case: Case) -> None:
        self.cases[case.name] = case

    def add_served(
        self,
        name: str,
        leaf: LeafCertificate,
        address: str,
        *,
        status: str,
        days_left: int,
        covers: bool = True,
    ) -> None:
        host, port = address.rsplit(":", 1)
        self.add(
            Case(
                name=name,
                domain=f"{name}.lab.test",
                target=address,
                kind="endpoint",
                status=status,
                leaf=leaf,
                sans=_sans_of(leaf),
                days_left=days_left,
                covers=covers,
                endpoint={"host": host.strip("[]"), "port": int(port)},
            )
        )

    def add_file(
        self,
        name: str,
        path: Path,
        *,
        status: str,
        leaf: LeafCertificate | None = None,
        days_left: int | None = None,
        password_env: str | None = None,
        error: str | None = None,
    ) -> None:
        file: dict[str, object] = {"path": str(path)}
        if password_env:
            file["password_env"] = password_env
        self.add(
            Case(
                name=name,
                domain=f"{name}.lab.test",
                target=str(path),
                kind="file",
                status=status,
                leaf=leaf,
                sans=_sans_of(leaf) if leaf else (),
                days_left=days_left,
                covers=True if leaf else None,
                error=error,
                file=file,
            )
        )

    def add_unreachable(self, name: str, port: int, error: str) -> None:
        self.add(
            Case(
                name=name,
                domain=f"{name}.lab.test",
                target=f"127.0.0.1:{port}",
                kind="endpoint",
                status="error",
                error=error,
                endpoint={"host": "127.0.0.1", "port": port},
            )
        )

    def inventory(self, *names: str) -> Path:
        """An inventory YAML file holding the named cases (all when none are named)."""
        chosen = [self.cases[n] for n in names] if names else list(self.cases.values())
        entries = []
        for case in chosen:
            entry: dict[str, object] = {"name": case.name, "domain": case.domain}
            if case.endpoint:
                entry["endpoints"] = [case.endpoint]
            if case.file:
                entry["files"] = [case.file]
            entries.append(entry)
        data = {"defaults": {"warn_days": 30, "critical_days": 7}, "certificates": entries}
        path = self.folder / f"inventory-{secrets.token_hex(4)}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def config(self, timeout: float = 1.0, concurrency: int = 8) -> Path:
        path = self.folder / f"certrenew-{secrets.token_hex(4)}.toml"
        path.write_text(
            f"[scan]\nconcurrency = {concurrency}\ntimeout_seconds = {timeout}\n",
            encoding="utf-8",
        )
        return path


def _sans_of(leaf: LeafCertificate) -> tuple[str, ...]:
    ext = leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return tuple(ext.value.get_values_for_type(x509.DNSName))


@pytest.fixture(scope="session")
def lab_ca() -> LocalCA:
    return LocalCA("certrenew test CA")


@pytest.fixture(scope="session")
def scan_lab(lab_ca: LocalCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanLab]:
    lab = ScanLab(lab_ca, tmp_path_factory.mktemp("scan-lab"))
    with ExitStack() as stack:

        def serve(leaf: LeafCertificate, **kwargs: Any) -> TLSServer:
            return stack.enter_context(TLSServer(leaf, **kwargs))

        served: list[tuple[str, float, KeyType, str, int]] = [
            ("expired", -2.5, "ecdsa", "expired", -3),
            ("soon3", 3.5, "rsa", "critical", 3),
            ("soon20", 20.5, "ecdsa", "warning", 20),
            ("far", 800.5, "rsa", "ok", 800),
        ]
        for name, days, key_type, status, days_left in served:
            leaf = lab.issue(name, days, key_type)
            lab.add_served(name, leaf, serve(leaf).address, status=status, days_left=days_left)

        own = lab.issue("selfsigned", 200.5, self_signed=True)
        lab.add_served("selfsigned", own, serve(own).address, status="ok", days_left=200)

        sni_a, sni_b = lab.issue("sni-a", 100.5), lab.issue("sni-b", 150.5, "rsa")
        shared = serve(sni_a, by_name={"sni-b.lab.test": sni_b}).address
        lab.add_served("sni-a", sni_a, shared, status="ok", days_left=100)
        lab.add_served("sni-b", sni_b, shared, status="ok", days_left=150)

        other = lab.issue("other", 90.5)
        lab.add_served(
            "mismatch", other, serve(other).address, status="critical", days_left=90, covers=False
        )

        if ipv6_loopback_available():
            v6 = lab.issue("ipv6", 60.5)
            lab.add_served("ipv6", v6, serve(v6, host="::1").address, status="ok", days_left=60)

        pem, der = lab.issue("file-pem", 45.5), lab.issue("file-der", 25.5)
        p12 = lab.issue("file-p12", 5.5, "rsa")
        for name, data, leaf, status, days_left in [
            ("file-pem", pem.cert_pem, pem, "ok", 45),
            ("file-der", der.der, der, "warning", 25),
            ("file-p12", p12.pkcs12(lab.p12_password), p12, "critical", 5),
        ]:
            path = lab.folder / f"{name}.bin"
            path.write_bytes(data)
            env = P12_PASSWORD_ENV if name == "file-p12" else None
            lab.add_file(
                name, path, status=status, leaf=leaf, days_left=days_left, password_env=env
            )
        wrong = lab.folder / "seal-wrong.p12"
        wrong.write_bytes(p12.pkcs12(lab.p12_password))
        lab.add_file(
            "file-p12-wrong",
            wrong,
            status="error",
            password_env=P12_WRONG_PASSWORD_ENV,
            error="password is wrong",
        )
        corrupt = lab.folder / "corrupt.crt"
        corrupt.write_bytes(b"\x30\x82\x01\x00" + os.urandom(200))
        lab.add_file("file-corrupt", corrupt, status="error", error="not a certificate")

        lab.add_unreachable("refused", refused_port(stack), "connection refused")
        lab.add_unreachable("silent", silent_port(stack), "timed out")
        plain = PlainHTTPServer()
        stack.callback(plain.stop)
        lab.add_unreachable("plain-http", plain.port, "not TLS")
        yield lab
