"""Crashed renewal runs carry on by themselves: two automations on the Prefect server.

A renewal whose process dies (machine restart, OOM, SIGKILL) is noticed in
one of two ways. When the serving process (or worker) survives, it marks the
run Crashed at once. When it died too, nobody does: the run stays Running,
but its heartbeats stop, and the first automation marks it Crashed once
`missed_heartbeats` of them are missing (Prefect's "detect zombie flows"
recipe). The second automation starts the small `resume-crashed-renewal`
flow for every crash of a renewal run (certrenew.flows.resume_crashed), which
schedules the run again unless it left that crash already; the serving
process or a worker starts it, and the flow replays its stored steps and
answers (certrenew.tasks.context, certrenew.tasks.forms) and goes on where it
stopped. Tickets are found by label before one is opened, so a step cut off
between its side effect and its stored result opens nothing twice.

The automations live on the server, so they work the same for `certrenew
serve` on one machine and for workers on several; the small flow is served
by either (`certrenew serve`, or `prefect deploy --all` from prefect.yaml).
Installing them again replaces them (found by name), so every start of
`certrenew serve` may do it.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.automations import AutomationCore
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from certrenew.config import RecoverySettings
from certrenew.errors import CertRenewError
from certrenew.flows.resume_crashed import RESUME_FLOW
from certrenew.tasks.context import RENEWAL_FLOW

SILENT_RUN = "certrenew: a silent renewal run has crashed"
RESUME_CRASHED = "certrenew: resume a crashed renewal run"
CRASH_MESSAGE = "no heartbeat from the renewal run: its process is gone"
# The small flow's deployment, by this name wherever it is served (serve, prefect.yaml).
RESUME_DEPLOYMENT = f"{RESUME_FLOW}/{RESUME_FLOW}"

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


def recovery_automations(settings: RecoverySettings, resume: UUID) -> list[AutomationCore]:
    """The two automations, as the server stores them; `resume`: the small flow's deployment."""
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
                f"A crashed {RENEWAL_FLOW} run is scheduled again, unless it left that "
                f"crash already ({RESUME_FLOW} looks first): it replays its stored steps "
                "and answers and carries on."
            ),
            trigger=EventTrigger(
                expect={"prefect.flow-run.Crashed"},
                match=_RENEWAL_RUNS,
                match_related=_OF_THE_RENEWAL_FLOW,
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                RunDeployment(
                    source="selected",
                    deployment_id=resume,
                    # The state's event has the state's id: the crash, not whatever came later.
                    parameters={
                        "crashed_run": "{{ event.resource.id }}",
                        "crashed_state": "{{ event.id | string }}",
                    },
                )
            ],
        ),
    ]


def install_recovery(settings: RecoverySettings, resume: UUID | None = None) -> list[str]:
    """Create or replace the automations (off: remove them); returns the names installed.

    `resume` is the deployment of the small flow; without it, it is looked up by
    name (RESUME_DEPLOYMENT), as `prefect deploy --all` names it.
    """
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        if settings.enabled and resume is None:
            try:
                resume = client.read_deployment_by_name(RESUME_DEPLOYMENT).id
            except ObjectNotFound:  # the automations installed before, if any, stay
                raise CertRenewError(
                    f"the deployment {RESUME_DEPLOYMENT} is missing on the Prefect server: "
                    "run `prefect --no-prompt deploy --all` from the project folder first "
                    "(certrenew serve deploys it itself)"
                ) from None
        for name in (SILENT_RUN, RESUME_CRASHED):
            for old in client.read_automations_by_name(name):
                client.delete_automation(old.id)
        if not settings.enabled or resume is None:
            return []
        wanted = recovery_automations(settings, resume)
        for automation in wanted:
            client.create_automation(automation)
    return [automation.name for automation in wanted]
