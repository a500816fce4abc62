"""`certrenew check jira`: is this Jira ready for the runbook's ticket chain?

Run once before going live. It asks Jira what the renewal will rely on and says
what is missing, in the words of the settings to change.

The done transition belongs to a workflow, and Jira only lists the transitions
of a given issue in its current status. So it is checked on a ticket the user
names (`--issue SIS-12`, an open ticket of the kind certrenew closes); without
one the line says "not checked", and the first close of a renewal verifies it
(failing with a message that names jira.done_transition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from certrenew.adapters.tracker.jira import JiraTracker
from certrenew.config import JiraSettings, TicketChainSettings
from certrenew.errors import (
    AuthenticationError,
    CertRenewError,
    ServiceUnavailable,
    TicketNotFound,
)

State = Literal["ok", "missing", "not checked"]


@dataclass(frozen=True)
class CheckItem:
    what: str
    state: State
    detail: str


def check_jira(
    settings: JiraSettings,
    chain: TicketChainSettings,
    issue: str | None = None,
    tracker: JiraTracker | None = None,
) -> list[CheckItem]:
    tracker = tracker or JiraTracker.from_settings(settings)
    items: list[CheckItem] = []
    try:
        who = tracker.whoami()
    except AuthenticationError as exc:
        return [
            CheckItem("reachable", "ok", tracker.url),
            CheckItem("credentials", "missing", str(exc)),
        ]
    except ServiceUnavailable:
        detail = f"no answer from {tracker.url}: check jira.url and the network path to Jira"
        return [CheckItem("reachable", "missing", detail)]
    except CertRenewError as exc:  # TLS not trusted, bad URL
        return [CheckItem("reachable", "missing", str(exc))]
    items.append(CheckItem("reachable", "ok", f"{tracker.url} ({tracker.describe()})"))
    items.append(CheckItem("credentials", "ok", f"signed in as {who}"))
    items += _projects(chain, tracker)
    items.append(_link_type(chain, tracker))
    items.append(_done_transition(settings, chain, tracker, issue))
    return items


def _projects(chain: TicketChainSettings, tracker: JiraTracker) -> list[CheckItem]:
    roles: dict[str, list[str]] = {}
    for role in ("csr_project", "owner_project", "install_project"):
        roles.setdefault(getattr(chain, role), []).append(f"tickets.{role}")
    items = []
    for key, names in roles.items():
        used_as = ", ".join(names)
        types = tracker.project_issue_types(key)
        if types is None:
            items.append(
                CheckItem(
                    f"project {key}",
                    "missing",
                    f"no project {key} visible to the account: fix {used_as} or grant "
                    "the account 'Browse projects' there",
                )
            )
            continue
        items.append(CheckItem(f"project {key}", "ok", used_as))
        wanted = chain.issue_type
        if wanted.lower() in (t.lower() for t in types):
            items.append(CheckItem(f"issue type {wanted!r} in {key}", "ok", "tickets.issue_type"))
        else:
            items.append(
                CheckItem(
                    f"issue type {wanted!r} in {key}",
                    "missing",
                    f"{key} has {', '.join(types) or 'no issue types'}: set tickets.issue_type "
                    "to one of them",
                )
            )
    return items


def _link_type(chain: TicketChainSettings, tracker: JiraTracker) -> CheckItem:
    wanted = chain.link_type
    names = tracker.link_type_names()
    if wanted.lower() in (n.lower() for n in names):
        return CheckItem(f"link type {wanted!r}", "ok", "tickets.link_type")
    return CheckItem(
        f"link type {wanted!r}",
        "missing",
        f"Jira has {', '.join(names) or 'no link types'}: set tickets.link_type to one of them",
    )


def _done_transition(
    settings: JiraSettings, chain: TicketChainSettings, tracker: JiraTracker, issue: str | None
) -> CheckItem:
    wanted = settings.done_transition
    what = f"transition {wanted!r}"
    if issue is None:
        return CheckItem(
            what,
            "not checked",
            f"pass --issue with an open {chain.csr_project} ticket to check it; otherwise "
            "the first close verifies it",
        )
    try:
        names = tracker.transition_names(issue)
    except TicketNotFound:
        return CheckItem(what, "missing", f"no ticket {issue}: pass --issue with an open ticket")
    if wanted.lower() in (n.lower() for n in names):
        return CheckItem(what, "ok", f"available on {issue} (jira.done_transition)")
    return CheckItem(
        what,
        "missing",
        f"{issue} offers {', '.join(names) or 'no transitions'}: set jira.done_transition to "
        "the one that closes tickets",
    )


MARKS = {"ok": "ok", "missing": "MISSING", "not checked": "not checked"}


def format_checklist(items: list[CheckItem]) -> str:
    width = max(len(item.what) for item in items)
    return "\n".join(
        f"[{MARKS[item.state]:^11}] {item.what:<{width}}  {item.detail}" for item in items
    )


def all_present(items: list[CheckItem]) -> bool:
    return all(item.state != "missing" for item in items)
