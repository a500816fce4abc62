"""`certrenew serve` hears detection's `certificate.expiring` events and asks the guard.

An event used to start a renewal run by itself (a deployment trigger on the
server); the server's automation creates the run without asking anyone, so a
second event meant a second run. Heard here instead, every event goes through
the same guard as alerts and `certrenew renew` (certrenew.tasks.guard).

The subscription replays the last minute of events when it connects and,
after a dropped connection, everything since the last event it saw; events
sent while `certrenew serve` was down longer are sent again by the next
detection run, which is served by this same process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from certrenew.config import Settings
from certrenew.errors import PERSON_FIXABLE
from certrenew.flows.detect_expiring import EXPIRING_EVENT
from certrenew.inventory import load_inventory
from certrenew.tasks.guard import Admission, admit_renewal
from certrenew.triggers import Trigger

if TYPE_CHECKING:
    from prefect.events import Event

log = logging.getLogger("certrenew.serve")

RECONNECT_SECONDS = 5.0


def event_trigger(event: Event) -> tuple[str, Trigger]:
    """The certificate an expiring event names, and the request it makes, in words."""
    payload = event.payload or {}
    name = str(payload.get("name") or event.resource.get("prefect.resource.name") or "")
    facts = [str(payload[k]) for k in ("status",) if payload.get(k)]
    if payload.get("days_left") is not None:
        facts.append(f"{payload['days_left']} days left")
    detail = f" ({', '.join(facts)})" if facts else ""
    return name, Trigger("event", f"event {event.event}{detail}", id=event.id.hex)


def handle_event(settings: Settings, config: str | None, event: Event) -> Admission | None:
    """Pass one event to the guard; log what was done with it, never raise."""
    name, trigger = event_trigger(event)
    try:
        entry = load_inventory(settings.inventory).get(name)
        admission = admit_renewal(settings, entry.name, trigger, config=config)
    except PERSON_FIXABLE as exc:
        log.warning("%s for %r: not acted on: %s", trigger.source, name, exc)
        return None
    except Exception:
        log.exception("%s for %r: not acted on", trigger.source, name)
        return None
    log.info("%s for %s: %s", trigger.source, entry.name, admission.note)
    return admission


async def _listen(settings: Settings, config: str | None) -> None:
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter

    handling: set[asyncio.Task[Any]] = set()
    while True:
        try:
            async with get_events_subscriber(
                filter=EventFilter(event=EventNameFilter(name=[EXPIRING_EVENT]))
            ) as subscriber:
                log.info("listening for %s events", EXPIRING_EVENT)
                async for event in subscriber:
                    task = asyncio.create_task(
                        asyncio.to_thread(handle_event, settings, config, event)
                    )
                    handling.add(task)
                    task.add_done_callback(handling.discard)
        except Exception as exc:
            log.warning(
                "the event stream of the Prefect API dropped (%s); connecting again in %g s",
                exc,
                RECONNECT_SECONDS,
            )
        await asyncio.sleep(RECONNECT_SECONDS)


def start_listening(settings: Settings, config: str | None) -> threading.Thread:
    """Hear expiring events in a thread of this process for as long as it runs."""
    thread = threading.Thread(
        target=asyncio.run, args=(_listen(settings, config),), name="certrenew-events", daemon=True
    )
    thread.start()
    return thread
