"""What a support person sees of a renewal in the Prefect UI: names, logs, its page, links.

One renewal is taken to the end through the served deployment; then the test
reads it back from the Prefect API as the UI shows it: the run's name, the
task runs in its graph, the lines of its Logs tab and the renewal's artifact.
"""

from __future__ import annotations

import time
from itertools import pairwise
from uuid import UUID

import pytest

from certrenew.tasks.context import run_name
from certrenew.tasks.forms import Question, pause_key
from certrenew.tasks.report import report_key
from tests.fixtures_renewal import RenewalLab

pytestmark = pytest.mark.prefect

# The steps of one renewal in which every answer is right the first time, each once,
# however many times the run was resumed (five answers: five resumes).
ONE_RENEWAL = {
    "confirm-expiry",
    "find-previous-csr",
    "open-service-owner-ticket",
    "open-csr-ticket",
    "collect-csr-and-key #1",
    "check-answerer (csr-1)",
    "collect-csr-and-key #2",
    "read-ca-answer",
    "check-answerer (ca-choice)",
    "record-ca-choice",
    "check-answerer (ca-request)",
    "record-ca-request",
    "collect-certificate #1",
    "check-answerer (certificate-1)",
    "collect-certificate #2",
    "archive-artifacts",
    "open-install-ticket",
    "verify-served-certificate #1",
    "check-answerer (install-1)",
    "verify-served-certificate #2",
    "comment-verification",
    "check-answerer (retire)",
    "close-tickets",
}


def task_run_names(run_id: UUID) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200
        )
    return [run.name for run in runs]


def report_versions(key: str) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
        )
    return [str(artifact.data) for artifact in reversed(found)]


def flow_run_name(run_id: UUID) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).name


def test_a_renewal_reads_like_the_runbook_in_the_ui(renewal_lab: RenewalLab) -> None:
    lab = renewal_lab
    domain, _server, rid, people = lab.serve_renewal("readable")
    tracker = lab.tracker()
    run = lab.start("readable")

    description = run.wait_paused(pause_key(Question.CSR, 1))
    [csr] = tracker.find_tickets(f"{rid}-csr")
    [owner] = tracker.find_tickets(f"{rid}-owner")
    # The form tells the person how to reach each ticket (the local tracker: a command).
    assert f"`certrenew tickets {csr.key}`" in description
    assert f"`certrenew tickets {owner.key}`" in description
    assert flow_run_name(run.id) == run_name(domain, str(run.id))
    first_page = report_versions(report_key(rid))[-1]
    assert f"`certrenew tickets {csr.key}`" in first_page
    assert "waiting for the CSR and key" in first_page

    run.resume(**people.answer(pause_key(Question.CSR, 1), rid))
    run.answer_each(
        people,
        rid,
        Question.CA_CHOICE,
        Question.CA_REQUEST,
        pause_key(Question.CERTIFICATE, 1),
        pause_key(Question.INSTALL, 1),
        Question.RETIRE,
    )
    final = run.wait_final()
    assert final.is_completed(), final.message
    result = final.result()

    names = task_run_names(run.id)
    assert sorted(names) == sorted(set(names)), "a step shows more than once in the graph"
    assert set(names) == ONE_RENEWAL

    install = result["tickets"]["install"]
    # A run's logs reach the API in batches, the last ones after the run has ended.
    deadline = time.monotonic() + 60
    while f"closed {csr.key}" not in (logs := "\n".join(run.logs())):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    for line in (
        f"opened {csr.key} asking the systems team for a CSR and key for {domain}",
        f"opened {owner.key} asking the service owner which CA renews {domain}",
        f"filed request {people.answer(Question.CA_REQUEST, rid)['request_number']} at CESICAT",
        f"opened {install} asking the systems team to install serial {result['new_serial']}",
        f"closed {csr.key}, {owner.key}, {install}",
    ):
        assert line in logs, line

    versions = report_versions(report_key(rid))
    assert all(a != b for a, b in pairwise(versions)), "same page twice"
    page = versions[-1]
    for shown in (
        "**Now:** done",
        f"`certrenew tickets {install}`",
        "CESICAT",
        f"`{result['ca_request']}`",
        f"serial `{result['old_serial']}`",
        f"serial `{result['new_serial']}`",
        result["archive"][0].rpartition("/")[0],
        "| csr-1 |",
        "| retire |",
    ):
        assert shown in page, shown
