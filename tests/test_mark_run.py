"""A renewal run labels itself even while the Prefect server's database turns writes away.

On SQLite, with hundreds of runs starting at once, the server answers a write
with HTTP 503 ("database is locked") more often than Prefect's client retries.
The run's label is how `certrenew history` and a later run of the same renewal
find it: a run that failed before it had its label could not be handed over.
The real Prefect API sits behind a proxy that turns the first label writes away
with the server's own answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from certrenew.tasks.context import RENEWAL_LABEL, mark_this_run

pytestmark = pytest.mark.prefect


class BusyDatabaseProxy:
    """Forwards to the Prefect API; answers the first `refusals` label writes with 503."""

    def __init__(self, upstream: str, refusals: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.left = refusals
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PATCH" and self.path.endswith("/labels") and proxy.left:
                    proxy.left -= 1
                    proxy.refused += 1
                    self._answer(503, b'{"exception_message": "Service Unavailable"}')
                    return
                path = self.path.removeprefix("/api")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command, proxy.upstream + path, content=body, headers=headers
                )
                self._answer(answer.status_code, answer.content)

            def _answer(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def __enter__(self) -> BusyDatabaseProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flow_run_id(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A flow run on the real API, as this process's run (as in the run's own process)."""
    from prefect import flow, get_client

    @flow(name="label-me")
    def label_me() -> None:
        pass

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(label_me)
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", str(run.id))
    yield str(run.id)


def test_the_label_is_written_though_the_database_turns_writes_away(flow_run_id: str) -> None:
    from uuid import UUID

    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with (
        BusyDatabaseProxy(PREFECT_API_URL.value(), refusals=3) as proxy,
        # Prefect's own retries off: each refusal reaches the code under test.
        temporary_settings({PREFECT_API_URL: proxy.url, PREFECT_CLIENT_MAX_RETRIES: 0}),
    ):
        mark_this_run("seu.example.cat-0a1b", "seu.example.cat")
    assert proxy.refused == 3
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    assert run.labels.get(RENEWAL_LABEL) == "seu.example.cat-0a1b"
    assert run.name.startswith("renew seu.example.cat")
