"""Who may answer a step: the roles of the second source, checked on every answer.

Certificate managers answer the renewal's steps and confirm retirement;
workflow managers approve the urgent channel. An answer from anyone else is
refused: the step asks again saying why, and the refusal is commented on the
renewal's ticket so the ticket chain shows it too. With no members configured
for a role, anyone may answer (the demo).

The open-source Prefect server has no user accounts, so the login in a form is
what the person typed. It is checked against the configured members and, where
the tracker knows its users (Jira), against the tracker's active users.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import count
from typing import TypeVar

from certrenew.adapters.tracker import UserDirectory
from certrenew.adapters.wiring import RenewalContext
from certrenew.renewal import RenewalStart
from certrenew.rules import role_refusal
from certrenew.tasks import forms
from certrenew.tasks.context import renewal_step, say
from certrenew.tasks.endpoints import now_text
from certrenew.tasks.report import Answered, record_answer
from certrenew.tasks.tickets import comment_once
from certrenew.templates import comments

R = TypeVar("R", bound=forms.PersonAnswer)


class Role(StrEnum):
    CERTIFICATE_MANAGERS = "certificate managers"
    WORKFLOW_MANAGERS = "workflow managers"


def _refused_key(_: object, parameters: dict[str, object]) -> str:
    start = parameters["start"]
    assert isinstance(start, RenewalStart)
    return f"{start.id}.check-answerer.{parameters['pause']}"


@dataclass(frozen=True)
class AnswerCheck:
    """Whether an answer was taken, and when it was checked (about when it was given)."""

    refusal: str | None
    at: str


@renewal_step("check-answerer", key=_refused_key)
def check_answerer(
    ctx: RenewalContext, start: RenewalStart, login: str, role: Role, pause: str
) -> AnswerCheck:
    """Why `login` may not answer the question `pause` (None: taken); kept per question asked."""
    members = (
        ctx.roles.certificate_managers
        if role is Role.CERTIFICATE_MANAGERS
        else ctx.roles.workflow_managers
    )
    refusal = role_refusal(login, members, str(role))
    directory = ctx.tracker if isinstance(ctx.tracker, UserDirectory) else None
    if refusal is None and members and directory and not directory.is_active_user(login.strip()):
        refusal = f"'{login}' is not an active user of the ticket tracker"
    if refusal is not None:
        ticket = start.label("owner")
        found = ctx.tracker.find_tickets(ticket)
        if found:
            body = comments.answer_refused(pause, login, refusal)
            comment_once(ctx, found[0].key, f"refused-{pause}", body, login.strip())
        say(f"refused the answer of '{login}' to {pause}: {refusal}")
    else:
        say(f"{login} answered {pause}")
    return AnswerCheck(refusal, now_text())


@dataclass(frozen=True)
class PersonAsker:
    """`forms.ask` that takes only answers from someone in `role`, asking again otherwise."""

    ctx: RenewalContext
    start: RenewalStart
    role: Role

    def __call__(self, form: type[R], key: str, description: str) -> R:
        problem = ""
        for refusals in count(0):
            pause = key if refusals == 0 else f"{key}-refused-{refusals}"
            text = description
            if problem:
                text = f"**The last answer was refused: {problem}**\n\n{description}"
            answer = forms.ask(form, pause, text)
            checked = check_answerer(self.ctx, self.start, answer.who(), self.role, pause)
            problem = checked.refusal or ""
            if not problem:
                record_answer(Answered(pause, answer.who(), checked.at))
                return answer
        raise AssertionError("unreachable")
