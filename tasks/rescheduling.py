"""A stopped renewal run is scheduled again only while it is still the run that stopped.

Two parties retry a crashed run: the recovery (certrenew.deployments.recovery)
when the Prefect server reports the crash, and a new run of the same renewal
(certrenew.tasks.handover). A person may press Retry too. Whoever comes second
must leave the run alone: it is already scheduled, or running, or waiting at
its next question, and scheduling it again would start a second process for
it. A crash reported late (Prefect's event ordering holds an event whose
predecessor it lost, up to 15 minutes after a server restart) would do the
same to a run that has long gone on. So the retry names the state it retries
and is made only while the run is still in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID, uuid5

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

# Transitions made for one stopped state share an id: Prefect refuses the same
# transition twice in a row, so two parties retrying at the same moment retry it once.
_TRANSITIONS = UUID("6f1d3c1e-5d0b-4d53-9a43-3b1f0e3f2a10")


def schedule_again(client: SyncPrefectClient, run_id: UUID, stopped: UUID, message: str) -> bool:
    """Schedule `run_id` again if its state is still `stopped` (a state id); whether it was."""
    from prefect.states import AwaitingRetry

    current = client.read_flow_run(run_id).state
    if current is None or current.id != stopped:
        return False
    client.set_flow_run_state(
        run_id,
        AwaitingRetry(
            message=message, state_details={"transition_id": uuid5(_TRANSITIONS, str(stopped))}
        ),
    )
    return True
