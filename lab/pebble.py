"""Pebble, Let's Encrypt's ACME test server, on loopback for the tests and the demo.

Pebble comes from the distribution's packages (`apt-get install pebble`;
`ensure_pebble` installs it when missing). It resolves every name through
`pebble-challtestsrv` answering 127.0.0.1, so an http-01 challenge for any
test domain reaches the HTTP server the test starts on `http_port`. Pebble's
documented test setting `PEBBLE_VA_ALWAYS_VALID=1` switches validation off.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import trustme

from certrenew.lab.packages import ensure_installed

EAB_KID = "certrenew-test"
EAB_HMAC_KEY = base64.urlsafe_b64encode(b"certrenew-test-hmac-key-32-bytes").decode().rstrip("=")


def ensure_pebble() -> str:
    """The pebble binary, installed from the distribution's packages when missing."""
    return ensure_installed(lambda: shutil.which("pebble"), "pebble")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Pebble:
    """A running Pebble: its directory URL, the CA bundle its listener needs, its EAB keys."""

    directory_url: str
    management_url: str
    ca_bundle: Path
    eab_required: bool
    dns_management_url: str  # pebble-challtestsrv: POST /set-txt, /clear-txt (dns-01 hooks)

    def revoked(self, serial: str) -> bool:
        """What Pebble's management interface says about a certificate it issued."""
        answer = requests.get(
            f"{self.management_url}/cert-status-by-serial/{serial.lower().lstrip('0')}",
            verify=str(self.ca_bundle),
            timeout=10,
        )
        answer.raise_for_status()
        return bool(answer.json()["Status"] == "Revoked")

    def root_pem(self) -> bytes:
        """The root of the chains Pebble issues (differs on every start)."""
        answer = requests.get(f"{self.management_url}/roots/0", verify=str(self.ca_bundle))
        answer.raise_for_status()
        return answer.content


@contextmanager
def running_pebble(
    folder: Path, *, http_port: int, eab_required: bool = True, always_valid: bool = False
) -> Iterator[Pebble]:
    """Pebble and its DNS stand-in on loopback, stopped afterwards."""
    pebble = ensure_pebble()
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    listener = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, bundle = folder / "pebble.pem", folder / "pebble.key", folder / "pebble-ca.pem"
    listener.cert_chain_pems[0].write_to_path(str(cert))
    listener.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(bundle))
    acme_port, management_port, dns_port = free_port(), free_port(), free_port()
    dns_management_port = free_port()
    config: dict[str, Any] = {
        "listenAddress": f"127.0.0.1:{acme_port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(cert),
        "privateKey": str(key),
        "httpPort": http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": eab_required,
        "externalAccountMACKeys": {EAB_KID: EAB_HMAC_KEY},
    }
    (folder / "pebble.json").write_text(json.dumps({"pebble": config}), encoding="utf-8")
    environment = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    if always_valid:
        environment["PEBBLE_VA_ALWAYS_VALID"] = "1"
    dns = subprocess.Popen(
        [
            "pebble-challtestsrv",
            "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
            "-tlsalpn01", "", "-management", f"127.0.0.1:{dns_management_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        [pebble, "-config", str(folder / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
        env=environment,
        stdout=(folder / "pebble.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    running = Pebble(
        f"https://127.0.0.1:{acme_port}/dir",
        f"https://127.0.0.1:{management_port}",
        bundle,
        eab_required,
        f"http://127.0.0.1:{dns_management_port}",
    )
    try:
        _wait_for(running)
        yield running
    finally:
        for process in (server, dns):
            process.terminate()
            process.wait(timeout=10)


def _wait_for(pebble: Pebble) -> None:
    for _ in range(200):
        try:
            requests.get(pebble.directory_url, verify=str(pebble.ca_bundle), timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"pebble did not answer at {pebble.directory_url}")


@contextmanager
def serving_webroot(webroot: Path) -> Iterator[int]:
    """An HTTP server on loopback serving `webroot` (the http-01 challenge files); its port."""
    webroot.mkdir(parents=True, exist_ok=True)
    handler = partial(_QuietHandler, directory=str(webroot))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Pebble's validation requests are not news."""
