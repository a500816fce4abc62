"""The renewal flow served for real: the session's Prefect API plus a serving process.

Tests start renewal runs on the served deployment and answer the human steps
through the API (`resume_flow_run` with input), as a person would from the UI.
Each test adds its own certificate (a TLS server on loopback) to one shared
inventory file, which the flow reads at run time.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from uuid import UUID

import pytest
import toml

from certrenew.adapters.tracker import TicketTracker
from certrenew.adapters.wiring import ArchiveSetup, build_archive, build_tracker
from certrenew.config import Settings, load_settings
from certrenew.deployments.demo import (
    DEMO_TIMINGS,
    EXAMPLES,
    RENEWAL_DEPLOYMENT,
    wait_for_deployment,
)
from certrenew.inventory import load_inventory
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.people import DemoPeople
from certrenew.lab.stack import LocalStack
from certrenew.lab.tls import LeafCertificate, LocalCA, TLSServer
from certrenew.probe import run_scan
from certrenew.renewal import RenewalStart, ServedCertificate, renewal_id
from certrenew.tasks.forms import open_question

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


def alive(pid: int) -> bool:
    """Whether `pid` runs; one that exited and was not reaped yet is a zombie ("Z"): not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class RenewalRun:
    """One renewal run, seen from the outside as support staff see it."""

    id: UUID

    def state(self) -> Any:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            return client.read_flow_run(self.id).state

    def process(self) -> int | None:
        """The live process running this run: the pid the serving process recorded on it."""
        from prefect import get_client

        with get_client(sync_client=True) as client:
            recorded = client.read_flow_run(self.id).infrastructure_pid
        if not recorded:
            return None
        pid = int(recorded.rsplit(":", 1)[1])
        return pid if alive(pid) else None

    def wait_paused(self, key: str, timeout: float = 180) -> str:
        """Wait until the run asks the question `key`; returns the form's description."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state.is_final():
                # What the run said last: in CI output, the only trace of why it ended.
                said = "\n".join(self.logs()[-15:])
                raise AssertionError(
                    f"run ended {state.name} ({state.message}) before '{key}'; its last logs:\n"
                    f"{said}"
                )
            question = open_question(self.id)
            if question and question.key == key:
                return question.description
            time.sleep(0.5)
        asked = open_question(self.id)
        waiting = f"; it asks '{asked.key}': {asked.description[-600:]}" if asked else ""
        raise AssertionError(f"run never asked '{key}'; last state {self.state()}{waiting}")

    def resume(self, **answer: Any) -> None:
        from prefect.flow_runs import resume_flow_run

        key = self.state().state_details.pause_key
        resume_flow_run(self.id, run_input=answer)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.state()
            if not (state.is_paused() and state.state_details.pause_key == key):
                return
            time.sleep(0.3)

    def answer_each(self, people: DemoPeople, renewal: str, *keys: str) -> None:
        """Wait for each question in turn and resume it with the scripted people's answer."""
        for key in keys:
            self.wait_paused(key)
            self.resume(**people.answer(key, renewal))

    def wait_final(self, timeout: float = 180) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state.is_final():
                return state
            time.sleep(0.5)
        raise AssertionError(f"run did not finish; last state {self.state()}")

    def logs(self) -> list[str]:
        from prefect import get_client
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        # The server answers at most 200 at a time: page through a long run's logs.
        messages: list[str] = []
        with get_client(sync_client=True) as client:
            while page := client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[self.id])),
                limit=200,
                offset=len(messages),
            ):
                messages += [log.message for log in page]
        return messages


class ServedRenewal(NamedTuple):
    domain: str
    server: TLSServer
    renewal: str
    people: DemoPeople


@dataclass
class RenewalLab:
    settings: Settings
    config: Path
    inventory: Path
    home: Path
    ui_url: str
    ca: LocalCA = field(default_factory=lambda: LocalCA("renewal test CA"))
    entries: list[str] = field(default_factory=list)
    servers: list[TLSServer] = field(default_factory=list)
    # The serving process's HTTP port (alerts in, metrics out) and its bearer token.
    intake_url: str = ""
    intake_token: str = ""
    # The Prefect server and the serving process (or none: workers run the flows).
    stack: LocalStack | None = field(default=None, repr=False)

    def serve_certificate(self, name: str, days: float = 5) -> tuple[str, TLSServer]:
        """A TLS endpoint serving `<name>.test.example.cat`, added to the inventory."""
        domain = f"{name}.test.example.cat"
        server = TLSServer(self.ca.issue(domain, days=days, key_type="rsa")).start()
        self.servers.append(server)
        self.entries.append(inventory_entry(name, domain, server.address, owner=f"{name}-owner"))
        write_inventory(self.inventory, self.entries)
        return domain, server

    def people(self, domain: str, server: TLSServer) -> DemoPeople:
        return DemoPeople(self.settings, self.ca, server, domain, lambda _: None)

    def serve_renewal(self, name: str, days: float = 5) -> ServedRenewal:
        """A certificate served and listed, its renewal's id, and the people who answer."""
        domain, server = self.serve_certificate(name, days)
        renewal = renewal_id(domain, served_serial(self, name))
        return ServedRenewal(domain, server, renewal, self.people(domain, server))

    def tracker(self) -> TicketTracker:
        return build_tracker(self.settings)

    def archive(self) -> ArchiveSetup:
        return build_archive(self.settings)

    def start(self, name: str, **parameters: Any) -> RenewalRun:
        from prefect.deployments import run_deployment

        # Called from sync code: the flow run itself, not the coroutine async_dispatch allows for.
        run = cast(
            "FlowRun",
            run_deployment(
                RENEWAL_DEPLOYMENT,
                parameters={"name": name, "config": str(self.config), **parameters},
                timeout=0,
            ),
        )
        return RenewalRun(run.id)

    def run_page(self, run: RenewalRun) -> str:
        """The run's page in the Prefect UI: the link tickets and the demo give people."""
        return f"{self.ui_url}/runs/flow-run/{run.id}"

    def install(self, server: TLSServer, crt: bytes, key: bytes) -> None:
        server.install(LeafCertificate.from_pem(crt + self.ca.cert_pem, key))


def served_serial(lab: RenewalLab, name: str) -> str:
    """The serial the lab's certificate `name` serves, read as step 0 reads it."""
    inventory = load_inventory(lab.inventory)
    single = inventory.model_copy(update={"certificates": [inventory.get(name)]})
    (result,) = run_scan(single, concurrency=1, timeout=5)
    assert result.serial
    return result.serial


def renewal_start(domain: str, name: str = "seu", ca: str = "CESICAT") -> RenewalStart:
    """Step 0's answer for a certificate served on loopback, for tests that run later steps."""
    old = ServedCertificate("0A1B", datetime(2026, 12, 20, tzinfo=UTC), "ab" * 32, domain, 18)
    return RenewalStart(
        id=renewal_id(domain, old.serial),
        name=name,
        domain=domain,
        owner=None,
        current_ca=ca,
        old=old,
        endpoints=("127.0.0.1:443",),
        files=(),
    )


def example_config(path: Path, **changes: Any) -> Path:
    """The shipped example configuration with `changes` (sections merged), as a file."""
    config = tomllib.loads((EXAMPLES / "certrenew.toml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(toml.dumps(config), encoding="utf-8")
    return path


@contextmanager
def served_renewal_lab(
    root: Path,
    api_url: str | None = None,
    *,
    serving: bool = True,
    server_env: dict[str, str] | None = None,
    **config: Any,
) -> Iterator[RenewalLab]:
    """A lab whose renewal flow is served on `api_url`, or on a Prefect server of its own.

    Its own server also serves the UI, which the test harness's server does not;
    this process talks to whichever server it is for as long as the lab runs.
    `config` changes the shipped example configuration (e.g. `roles`; `renewal`
    is merged into the demo's timings). Without `serving`, only the server runs
    (with `server_env`, e.g. its database): workers run the flows.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    inventory = root / "inventory.yaml"
    write_inventory(inventory, [])
    path = example_config(
        root / "certrenew.toml",
        inventory=str(inventory),
        data_dir=str(root / "data"),
        renewal=DEMO_TIMINGS | config.pop("renewal", {}),
        **config,
    )
    stack = LocalStack(
        root / "prefect", path if serving else None, api_url=api_url, serving=serving
    )
    stack.env.update(server_env or {})
    # Tests add certificates as they go: the metrics read them again every second.
    stack.env["CERTRENEW_INTAKE__PROBE_INTERVAL_SECONDS"] = "1"
    lab = RenewalLab(
        load_settings(path),
        path,
        inventory,
        stack.home,
        ui_url=stack.ui_url,
        intake_url=stack.intake_url,
        intake_token=stack.intake_token,
        stack=stack,
    )
    try:
        with stack, temporary_settings({PREFECT_API_URL: stack.api_url}):
            if serving:
                wait_for_deployment()
            try:
                yield lab
            except Exception as exc:
                # A run's process writes to serve.log: why it crashed is told there only.
                if stack.runner:
                    exc.add_note(f"--- serve.log, last lines:\n{stack.runner.tail(40)}")
                raise
    finally:
        for server in lab.servers:
            server.stop()


@pytest.fixture(scope="session")
def renewal_lab(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RenewalLab]:
    from prefect.settings import PREFECT_API_URL

    with served_renewal_lab(tmp_path_factory.mktemp("renewal"), PREFECT_API_URL.value()) as lab:
        yield lab
