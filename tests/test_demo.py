"""`certrenew demo` as a person runs it: the real command, in its own process group.

The demo plays the people who work in tickets; the test plays the person at
the keyboard, answering each form through the API exactly as the UI's Resume
dialog does, with what the demo printed (the run's page, the mailed file).
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import pytest

from tests.fixtures_demo import Demo, processes_of

pytestmark = pytest.mark.prefect


def answer(api_url: str, run_id: UUID, key: str, run_input: dict[str, str]) -> None:
    """Resume the run at question `key` as the Resume dialog does, once that form is up."""
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from certrenew.tasks.forms import open_question

    with temporary_settings({PREFECT_API_URL: api_url}):
        deadline = time.monotonic() + 60
        while (question := open_question(run_id)) is None or question.key != key:
            assert time.monotonic() < deadline, f"the run does not ask '{key}'"
            time.sleep(0.5)
        resume_flow_run(run_id, run_input=run_input)


def test_a_person_answers_every_support_step_and_the_demo_tells_each_one(demo: Demo) -> None:
    ui = demo.wait_for(r"Prefect UI: (\S+)").group(1)
    run_id = UUID(demo.wait_for(r"renewal run: \S+/runs/flow-run/(\S+)").group(1))
    api = f"{ui}/api"

    demo.wait_for(r"step 'ca-request'")
    demo.wait_for(r"Answer it in the Prefect UI: \S+" + str(run_id))
    answer(api, run_id, "ca-request", {"request_number": "REQ9", "requested_by": "anna"})

    mailed = Path(demo.wait_for(r"certificate arrived by mail; it is saved as (\S+)").group(1))
    demo.wait_for(r"step 'certificate-1'")
    answer(
        api,
        run_id,
        "certificate-1",
        {"certificate_pem": mailed.read_text(), "answered_by": "anna"},
    )

    demo.wait_for(r"step 'retire'")
    answer(api, run_id, "retire", {"outcome": "Retired without revocation", "confirmed_by": "anna"})
    demo.wait_for(r"The renewal is complete")
    assert demo.proc.wait(timeout=60) == 0
    summary = "\n".join(demo.seen)
    assert "systems team: attached" in summary and "service owner: answered" in summary
    assert processes_of(demo.data_dir) == []


def test_ctrl_c_stops_the_demo_and_leaves_no_prefect_process_behind(demo: Demo) -> None:
    demo.wait_for(r"renewal run: ")
    assert processes_of(demo.data_dir), "the demo's server and serving process should be up"
    demo.wait_for(r"step 'ca-request'")
    assert demo.ctrl_c() == 130
    deadline = time.monotonic() + 30
    while processes_of(demo.data_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_of(demo.data_dir) == []
