"""The loopback HTTP(S) listener of the lab's test servers, which can go down and come back.

Jira and SharePoint test servers inject failures per request (a status, a
dropped connection, a lost or late answer); an outage of the machine itself
is not a request's fate: connections are refused until it is back, on the
same port, and a server whose certificate is replaced (a wrong or untrusted
one, then the right one again) is the same server restarted with another TLS
context. Open keep-alive connections are cut on the way down, as a restart
cuts them, so a client's next request meets the new state and not a pooled
connection to the old one.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


class Listener:
    """A ThreadingHTTPServer on 127.0.0.1 serving in a daemon thread, with an on/off switch."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None, port: int = 0
    ) -> None:
        self._handler = handler
        self.tls = tls
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.httpd = self._bind(port)
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def _bind(self, port: int) -> ThreadingHTTPServer:
        listener = self

        class Tracked(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                connection, address = super().get_request()
                with listener._lock:
                    listener._open.add(connection)
                return connection, address

            def shutdown_request(self, request: Any) -> None:
                with listener._lock:
                    listener._open.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that gave up on a late or lost answer is what the tests want.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        httpd = Tracked((LOOPBACK, port), self._handler)
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        return httpd

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def up(self) -> bool:
        return self._thread is not None

    def stop(self) -> None:
        """Stop listening and cut every open connection: the port refuses from now on."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
        with self._lock:
            cut, self._open = list(self._open), set()
        for connection in cut:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)

    def come_back(self, tls: ssl.SSLContext | None = None) -> None:
        """Listen again on the same port; with `tls`, serve another certificate."""
        if self.up:
            self.stop()
        if tls is not None:
            self.tls = tls
        self.httpd = self._bind(self.port)
        self.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
