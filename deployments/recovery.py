"""Crashed renewal runs carry on by themselves: two automations on the Prefect server.

A renewal whose process dies (machine restart, OOM, SIGKILL) is noticed in
one of two ways. When the serving process (or worker) survives, it marks the
run Crashed at once. When it died too, nobody does: the run stays Running,
but its heartbeats stop, and the first automation marks it Crashed once
`missed_heartbeats` of them are missing (Prefect's "detect zombie flows"
recipe). The second automation schedules every crashed renewal run again; the
serving process or a worker starts it, and the flow replays its stored steps
and answers (certrenew.tasks.context, certrenew.tasks.forms) and goes on where
it stopped. Tickets are found by label before one is opened, so a step cut
off between its side effect and its stored result opens nothing twice.

The automations live on the server, so they work the same for `certrenew
serve` on one machine and for workers on several. Installing them again
replaces them (found by name), so every start of `certrenew serve` may do it.
"""

from __future__ import annotations

from datetime import timedelta

from prefect.automations import AutomationCore
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from certrenew.config import RecoverySettings
from certrenew.tasks.context import RENEWAL_FLOW

SILENT_RUN = "certrenew: a silent renewal run has crashed"
RESUME_CRASHED = "certrenew: resume a crashed renewal run"
CRASH_MESSAGE = "no heartbeat from the renewal run: its process is gone"
RESUME_MESSAGE = "crashed; scheduled again by certrenew's recovery, to resume from its stored steps"

# The events that end a run's heartbeats on purpose: a suspended run (waiting for a
# person) has no process either, and must not be taken for crashed.
QUIET_ON_PURPOSE = {
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Cancelling",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Paused",
    "prefect.flow-run.Suspended",
}

_RENEWAL_RUNS = ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"})
_OF_THE_RENEWAL_FLOW = ResourceSpecification(
    {"prefect.resource.role": "flow", "prefect.resource.name": RENEWAL_FLOW}
)


def recovery_automations(settings: RecoverySettings) -> list[AutomationCore]:
    """The two automations, as the server stores them."""
    silence = timedelta(seconds=settings.heartbeat_seconds * settings.missed_heartbeats)
    return [
        AutomationCore(
            name=SILENT_RUN,
            description=(
                f"A {RENEWAL_FLOW} run that sent no heartbeat for {silence.total_seconds():.0f} s "
                "while running lost its process: mark it Crashed."
            ),
            trigger=EventTrigger(
                after={"prefect.flow-run.heartbeat"},
                expect={"prefect.flow-run.heartbeat", *QUIET_ON_PURPOSE},
                match=_RENEWAL_RUNS,
                match_related=_OF_THE_RENEWAL_FLOW,
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=silence,
            ),
            actions=[ChangeFlowRunState(state=StateType.CRASHED, message=CRASH_MESSAGE)],
        ),
        AutomationCore(
            name=RESUME_CRASHED,
            description=(
                f"A crashed {RENEWAL_FLOW} run is scheduled again: it replays its stored "
                "steps and answers and carries on."
            ),
            trigger=EventTrigger(
                expect={"prefect.flow-run.Crashed"},
                match=_RENEWAL_RUNS,
                match_related=_OF_THE_RENEWAL_FLOW,
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[ChangeFlowRunState(state=StateType.SCHEDULED, message=RESUME_MESSAGE)],
        ),
    ]


def install_recovery(settings: RecoverySettings) -> list[str]:
    """Create or replace the automations (off: remove them); returns the names installed."""
    from prefect import get_client

    wanted = recovery_automations(settings) if settings.enabled else []
    with get_client(sync_client=True) as client:
        for automation in recovery_automations(settings):
            for old in client.read_automations_by_name(automation.name):
                client.delete_automation(old.id)
        for automation in wanted:
            client.create_automation(automation)
    return [automation.name for automation in wanted]
