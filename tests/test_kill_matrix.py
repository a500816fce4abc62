"""Kill at every step: the renewal is SIGKILLed at each side effect in turn and still
completes with one ticket of each kind, one comment per step marker, one copy of
each archived file and one notice.

Each attempt of the run is a process of its own (`python -m
certrenew.lab.killpoints`), started directly on a deployment nobody serves, so
no runner polls between attempts. A killed attempt is treated as Prefect's
runner and an operator treat it: the run is marked Crashed, then retried
(AwaitingRetry) and started again; people answer through the API as they do
from the UI, while the attempt's process waits in its warm window (the
default), so an attempt goes on from question to question until a point kills
it. The points of one renewal fire one after the other, each in the
attempt that reaches it; after each the ticket chain and the archive are
checked, so the matrix names the kill point whose recovery broke something.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import pytest
import toml

from certrenew.adapters.tracker import TicketTracker
from certrenew.adapters.wiring import ArchiveSetup, build_archive, build_tracker
from certrenew.config import RecoverySettings, Settings, load_settings
from certrenew.deployments.recovery import install_recovery
from certrenew.lab.jira_server import JiraServer
from certrenew.lab.killpoints import KILL_AT_ENV, KILL_STATE_ENV, KillPoint
from certrenew.lab.people import SUPPORT, DemoPeople
from certrenew.lab.stack import prefect_env
from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import Question, open_question, question_of
from tests.fixtures_renewal import RenewalLab, served_serial
from tests.fixtures_sharepoint import SharePointTestbed
from tests.test_renewal_integrations import live_config

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

# A renewal of 60-odd attempts takes minutes, more on a loaded machine.
pytestmark = [pytest.mark.prefect, pytest.mark.timeout(3600)]

# Every side effect of a renewal that answers each question at once: before and after
# each ticket creation, link, comment, attachment read and delete, archive upload
# (manifest included), notice and closing. In the order a renewal meets them.
KILL_POINTS = [
    *(f"{when}:create_ticket:-owner" for when in ("before", "after")),
    *(f"{when}:create_ticket:-csr" for when in ("before", "after")),
    *(f"{when}:download_attachment:.key" for when in ("before", "after")),
    *(f"{when}:add_comment:csr-received" for when in ("before", "after")),
    *(f"{when}:add_comment:ca-chosen" for when in ("before", "after")),
    *(f"{when}:add_comment:ca-requested:{n}" for n in (1, 2) for when in ("before", "after")),
    *(f"{when}:download_attachment:.crt" for when in ("before", "after")),
    *(f"{when}:add_comment:certificate-received" for when in ("before", "after")),
    *(f"{when}:write_file:.csr" for when in ("before", "after")),
    *(f"{when}:write_file:.key" for when in ("before", "after")),
    *(f"{when}:write_file:.crt" for when in ("before", "after")),
    *(f"{when}:write_file:manifest.json" for when in ("before", "after")),
    *(f"{when}:add_comment:archived" for when in ("before", "after")),
    *(f"{when}:delete_attachment:.key" for when in ("before", "after")),
    *(f"{when}:add_comment:key-removed" for when in ("before", "after")),
    *(f"{when}:create_ticket:-install" for when in ("before", "after")),
    *(f"{when}:link_tickets: :{n}" for n in (1, 2) for when in ("before", "after")),
    *(f"{when}:add_comment:install-opened:{n}" for n in (1, 2) for when in ("before", "after")),
    *(f"{when}:add_comment:verified" for when in ("before", "after")),
    *(f"{when}:deliver:-revoked" for when in ("before", "after")),
    *(f"{when}:add_comment:retired:{n}" for n in (1, 2, 3) for when in ("before", "after")),
    *(f"{when}:close_ticket:-:{n}" for n in (1, 2, 3) for when in ("before", "after")),
]
# A new run after each kill finds the killed run of its renewal at step 0 and hands over to
# it (certrenew.tasks.handover): the killed run is retried and goes on from its stored steps
# and answers. In CI a point per step from the CSR ticket to the closing, after
# verification above all (there a new run used to stop as "already renewed"); every point
# with CERTRENEW_KILL_MATRIX=all.
NEW_RUN_KILL_POINTS = (
    KILL_POINTS
    if os.environ.get("CERTRENEW_KILL_MATRIX") == "all"
    else [
        "after:create_ticket:-csr",
        "after:write_file:manifest.json",
        "after:delete_attachment:.key",
        "after:create_ticket:-install",
        "after:add_comment:verified",
        "before:deliver:-revoked",
        "after:add_comment:retired:1",
        "after:close_ticket:-:3",
    ]
)
# On Jira and SharePoint an attempt costs many requests: the points where their adapters'
# own recovery is at stake (a lost create, link, upload, delete), after and before.
LIVE_KILL_POINTS = [
    "after:create_ticket:-owner",
    "after:create_ticket:-csr",
    "after:add_comment:ca-requested:1",
    "after:download_attachment:.crt",
    "after:write_file:.key",
    "after:write_file:manifest.json",
    "before:delete_attachment:.key",
    "after:delete_attachment:.key",
    "after:add_comment:key-removed",
    "after:create_ticket:-install",
    "after:link_tickets: :1",
    "after:close_ticket:-:1",
]


@dataclass
class KilledRenewal:
    """One renewal run driven attempt by attempt, killed at each planned point."""

    deployment: UUID
    name: str
    config: Path
    points: list[str]
    folder: Path
    env: dict[str, str]
    run_id: UUID | None = None
    attempts: subprocess.Popen[str] | None = None
    matrix: list[tuple[str, str]] = field(default_factory=list)
    killed: UUID | None = None  # the killed run, while a new run of its renewal runs
    handovers: int = 0

    def start(self) -> None:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(
                self.deployment, parameters={"name": self.name, "config": str(self.config)}
            )
        self.run_id = run.id

    def attempt(self, people: DemoPeople, renewal: str) -> int:
        """One process running the run until it suspends, ends or is killed.

        A question asked while the process waits in its warm window
        (certrenew.tasks.waiting) is answered then, as a person at the form would:
        the process goes on with the answer, and the next points fire in it.
        """
        if self.attempts is None:
            env = self.env | {
                KILL_AT_ENV: ",".join(self.points),
                KILL_STATE_ENV: str(self.folder / "kill-state.json"),
                "CERTRENEW_KILL_LOG": str(self.folder / "attempts.log"),
            }
            self.attempts = subprocess.Popen(
                [sys.executable, "-m", "certrenew.lab.killpoints", "--serve"],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.attempts.stdin and self.attempts.stdout and self.run_id
        began = time.monotonic()
        self.attempts.stdin.write(f"{self.run_id}\n")
        self.attempts.stdin.flush()
        while not select.select([self.attempts.stdout], [], [], 0.5)[0]:
            if self.state().name == "Paused" and open_question(self.run_id):
                self.answer(people, renewal)
        code = int(self.attempts.stdout.readline())
        with (self.folder / "attempts.log").open("a") as log:
            log.write(f"--- attempt exited {code} after {time.monotonic() - began:.1f} s\n")
        return code

    def stop(self) -> None:
        if self.attempts is not None:
            assert self.attempts.stdin
            self.attempts.stdin.close()
            self.attempts.wait(timeout=30)

    def fired(self) -> list[str]:
        state = self.folder / "kill-state.json"
        return json.loads(state.read_text())["fired"] if state.exists() else []

    def state(self) -> Any:
        from prefect import get_client

        assert self.run_id
        with get_client(sync_client=True) as client:
            return client.read_flow_run(self.run_id).state

    def start_new(self) -> None:
        """A new run of the certificate, as the next detection or alert would start one."""
        self.killed = self.run_id
        self.start()

    def handed_over(self) -> bool:
        """The new run ended by scheduling the killed one again: go on with that one."""
        from prefect import get_client

        killed, self.killed = self.killed, None
        if killed is None:
            return False
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(killed).state
        if state is None or not state.is_scheduled():
            return False
        self.run_id, self.handovers = killed, self.handovers + 1
        return True

    def crashed(self) -> None:
        """What Prefect's runner does when the process running a flow dies."""
        from prefect import get_client
        from prefect.states import Crashed

        assert self.run_id
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(self.run_id, Crashed(message="killed"), force=True)

    def retry(self) -> None:
        """What an operator does with a crashed run: Retry it (the same run goes on)."""
        from prefect import get_client
        from prefect.states import Scheduled

        assert self.run_id
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(self.run_id, Scheduled(name="AwaitingRetry"), force=True)

    def answer(self, people: DemoPeople, renewal: str) -> None:
        from prefect.flow_runs import resume_flow_run

        key = self.state().state_details.pause_key
        assert self.run_id
        resume_flow_run(self.run_id, run_input=answer_once(people, key, renewal))


def answer_once(people: DemoPeople, key: str, renewal: str) -> dict[str, Any]:
    """The people's answer; files they attached already are not made and attached again.

    A new run asks again what an earlier run of the renewal asked; the systems
    team and the CA point to what they already attached.
    """
    question = question_of(key)
    if (question is Question.CSR and "csr" in people.generated) or (
        question is Question.CERTIFICATE and "crt" in people.generated
    ):
        return {"answered_by": SUPPORT}
    return people.answer(key, renewal)


@pytest.fixture(scope="module")
def unserved_deployment(renewal_lab: RenewalLab) -> UUID:
    """The renewal flow as a deployment no process serves: the test starts each attempt."""
    from certrenew.flows.renew_certificate import renew_certificate

    # Called from sync code: the deployment and its id, not the coroutines async_dispatch allows.
    deployment = cast("RunnerDeployment", renew_certificate.to_deployment(name="kill-matrix"))
    return cast(UUID, deployment.apply())


def check_chain(tracker: TicketTracker, renewal: str) -> list[str]:
    """What is doubled in the renewal's tickets so far: tickets per kind, markers per ticket."""
    problems = []
    for kind in ("csr", "owner", "install"):
        if len(found := tracker.find_tickets(f"{renewal}-{kind}")) > 1:
            problems.append(f"{len(found)} {kind} tickets")
    for ticket in tracker.find_tickets(renewal):
        markers = Counter(
            line.split()[0]
            for body in tracker.comments(ticket.key)
            for line in body.splitlines()
            if line.startswith("[certrenew:")
        )
        problems += [f"{ticket.key}: {m} {n} times" for m, n in markers.items() if n > 1]
    return problems


def check_archive(setup: ArchiveSetup, folder: str) -> list[str]:
    names = [f.name for f in setup.archive.list_files(folder)]
    return [f"archive holds {name}" for name in names if ".old-" in name]


def drive(
    run: KilledRenewal,
    people: DemoPeople,
    renewal: str,
    folder: str,
    settings: Settings,
    new_run: bool,
) -> None:
    """Attempt after attempt until the run completes; one matrix row per kill.

    A killed run is retried, or (`new_run`) left Crashed while a new run of the
    same certificate starts, as the next detection would start one: that run
    hands the renewal back to the killed run, which goes on.
    """
    tracker, setup = build_tracker(settings), build_archive(settings)
    for _ in range(8 * len(run.points) + 20):
        code = run.attempt(people, renewal)
        if code == -9:
            point = run.fired()[-1]
            run.crashed()
            if new_run:
                run.start_new()
            else:
                run.retry()
            problems = check_chain(tracker, renewal) + check_archive(setup, folder)
            run.matrix.append((point, "; ".join(problems) or "recovered"))
            continue
        state = run.state()
        if state.is_completed() and not run.handed_over():
            return
        if state.is_completed():
            continue
        if state.is_paused():
            run.answer(people, renewal)
            continue
        raise AssertionError(f"attempt exited {code}, run {state.name}: {state.message}")
    raise AssertionError("the renewal did not complete")


def crash_loops_unbounded(config: Path, path: Path) -> Path:
    """`config` letting one run crash at every point: beyond `[recovery] max_retries`
    crashes a run waits for a person (certrenew.tasks.crashes), which the matrix is not."""
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    settings.setdefault("recovery", {})["max_retries"] = 10 * len(KILL_POINTS)
    path.write_text(toml.dumps(settings), encoding="utf-8")
    return path


def kill_matrix(
    lab: RenewalLab,
    deployment: UUID,
    name: str,
    config: Path,
    folder: Path,
    title: str,
    capsys: pytest.CaptureFixture[str],
    points: list[str] = KILL_POINTS,
    new_run: bool = False,
) -> None:
    """Renew `name` under `config`, killed at every point; print and check the matrix."""
    from prefect.settings import PREFECT_API_URL

    config = crash_loops_unbounded(config, folder / "kill-matrix.toml")
    settings = load_settings(config)
    domain, server = lab.serve_certificate(name)
    rid = renewal_id(domain, served_serial(lab, name))
    people = DemoPeople(settings, lab.ca, server, domain, lambda _: None)
    env = prefect_env(lab.home, PREFECT_API_URL.value())
    run = KilledRenewal(deployment, name, config, points, folder, env)
    setup = build_archive(settings)
    archive_folder = renewal_folder(setup.root_folder, "CESICAT", datetime.now(UTC).year, domain)
    run.start()
    try:
        drive(run, people, rid, archive_folder, settings, new_run)
    finally:
        run.stop()
        with capsys.disabled():
            print(f"\nkill point → outcome ({title})")
            for point, outcome in run.matrix:
                print(f"  {point:45} {outcome}")

    fired = [point for point, _ in run.matrix]
    assert sorted(fired) == sorted(str(KillPoint.parse(p)) for p in points)
    assert [row for row in run.matrix if row[1] != "recovered"] == []
    if new_run:  # each new run left the renewal to its killed run
        assert run.handovers == len(points)
    tracker = build_tracker(settings)
    for kind in ("csr", "owner", "install"):
        assert len(tracker.find_tickets(f"{rid}-{kind}")) == 1, kind
    names = renewal_file_names(domain)
    stored = sorted(f.name for f in setup.archive.list_files(archive_folder))
    assert stored == sorted([names["csr"], names["key"], names["crt"], "manifest.json"])
    assert len(list(settings.outbox_path().glob(f"{rid}-revoked*"))) == 1


def test_a_renewal_killed_at_every_side_effect_and_retried_completes_exactly_once(
    renewal_lab: RenewalLab,
    unserved_deployment: UUID,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kill_matrix(
        renewal_lab,
        unserved_deployment,
        "killed",
        renewal_lab.config,
        tmp_path,
        "local tracker and archive; the killed run retried",
        capsys,
    )


def test_a_renewal_killed_at_every_side_effect_and_run_again_completes_exactly_once(
    renewal_lab: RenewalLab,
    unserved_deployment: UUID,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without the recovery automations (not installed, or turned off), which would
    # retry the killed run before any new run came: the new run alone must find it.
    install_recovery(RecoverySettings(enabled=False))
    try:
        kill_matrix(
            renewal_lab,
            unserved_deployment,
            "killed-new-run",
            renewal_lab.config,
            tmp_path,
            "local tracker and archive; a new run after each kill",
            capsys,
            NEW_RUN_KILL_POINTS,
            new_run=True,
        )
    finally:
        install_recovery(renewal_lab.settings.recovery)


def test_a_renewal_on_jira_and_sharepoint_killed_at_every_side_effect_completes_exactly_once(
    renewal_lab: RenewalLab,
    unserved_deployment: UUID,
    jira_server: JiraServer,
    sharepoint: SharePointTestbed,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Jira Server and SharePoint, the archived key encrypted with a passphrase."""
    config = live_config(
        renewal_lab, tmp_path / "certrenew.toml", jira_server, sharepoint, "killed-live-owner"
    )
    passphrase = tmp_path / "key-passphrase"
    passphrase.write_text("correct horse battery staple", encoding="utf-8")
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    settings["sharepoint"]["key_passphrase_file"] = str(passphrase)
    config.write_text(toml.dumps(settings), encoding="utf-8")
    kill_matrix(
        renewal_lab,
        unserved_deployment,
        "killed-live",
        config,
        tmp_path,
        "Jira Server and SharePoint test servers; the killed run retried",
        capsys,
        LIVE_KILL_POINTS,
    )
