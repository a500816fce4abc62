"""A crashed renewal run is scheduled again, when the server reports the crash.

The recovery automation (certrenew.deployments.recovery) reacts to each
`prefect.flow-run.Crashed` event of a renewal run. An automation can only act,
not look first: changing the run's state itself, it scheduled again whatever
the run had become meanwhile (retried by a person and running, or waiting at
its next question when the event came late), and the run got a second process.
So it starts this small flow, which looks first (certrenew.tasks.rescheduling).
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow, get_client, get_run_logger

from certrenew.tasks.rescheduling import schedule_again

RESUME_FLOW = "resume-crashed-renewal"
RESUME_MESSAGE = "crashed; scheduled again by certrenew's recovery, to resume from its stored steps"
_RUN_RESOURCE = "prefect.flow-run."


@flow(name=RESUME_FLOW, persist_result=False, log_prints=False)
def resume_crashed_renewal(crashed_run: str, crashed_state: str) -> bool:
    """Schedule `crashed_run` (its id or event resource) again if it is still `crashed_state`."""
    run = UUID(crashed_run.removeprefix(_RUN_RESOURCE))
    with get_client(sync_client=True) as client:
        resumed = schedule_again(client, run, UUID(crashed_state), RESUME_MESSAGE)
    get_run_logger().info(
        "renewal run %s %s",
        run,
        "scheduled again to resume from its stored steps"
        if resumed
        else "left that crash already (retried, running or waiting): left alone",
    )
    return resumed
