"""A `certificate.expiring` event asks the guard for a renewal, on process workers too.

`certrenew serve` hears detection's events itself and passes each to the
guard (certrenew.deployments.listen). A worker set-up (`prefect.yaml`) has no
such process: there a deployment trigger on the server reacts to the event,
and a trigger can only start a run of a deployment. It starts this small flow,
not the renewal: the flow asks the guard, which starts the renewal run only
when none is open, and otherwise notes the request on the open renewal's
ticket, as for every other trigger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from certrenew.config import load_settings
from certrenew.inventory import load_inventory
from certrenew.tasks.guard import admit_renewal
from certrenew.triggers import Trigger

ADMIT_FLOW = "admit-renewal"


@flow(name=ADMIT_FLOW, persist_result=False, log_prints=False)
def admit_renewal_request(
    name: str, event: str = "", source: str = "", config: str | None = None
) -> dict[str, Any]:
    """Ask the guard to renew inventory certificate `name` (or domain) for event `event`."""
    settings = load_settings(Path(config) if config else None)
    entry = load_inventory(settings.inventory).get(name)
    # The event's id as the request's: the same event delivered twice is one request.
    said = source or "event certificate.expiring"
    trigger = Trigger("event", said, id=event) if event else Trigger("event", said)
    admission = admit_renewal(settings, entry.name, trigger, config=config)
    get_run_logger().info("%s for %s: %s", trigger.source, entry.name, admission.note)
    return admission.as_dict()
