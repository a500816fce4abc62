"""The questions only people can answer, as forms in the Prefect UI.

Each form suspends the run (nothing is held while people take days) and has a
markdown description saying exactly what to do. Form input is stored by
Prefect in its database, so no form ever asks for a private key: keys travel
only as ticket attachments or archived files.

Names typed in a form are recorded as typed: the open-source Prefect server has
no user accounts, so they are a statement, not an identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import count
from typing import Any, Final, Literal, TypeVar
from uuid import UUID

from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model

R = TypeVar("R", bound=RunInput)
T = TypeVar("T")

RECHECK: Final = "Check again"


class Question(StrEnum):
    """The questions a renewal asks people: each is the pause key, or its prefix.

    Questions asked again after a wrong answer get `-<attempt>` (`csr-2`), and a
    wait for an outside system gets `wait-<step>-<attempt>`: see `pause_key`.
    The demo and the tests answer by these names.
    """

    CSR_REUSE = "csr-reuse"
    CSR = "csr"
    CA_CHOICE = "ca-choice"
    URGENT_APPROVAL = "urgent-approval"
    CA_REQUEST = "ca-request"
    CERTIFICATE = "certificate"
    INSTALL = "install"
    RETIRE = "retire"
    WAIT = "wait"


def pause_key(question: Question, *parts: object) -> str:
    """`csr-2`, `wait-archive-artifacts-1`: unique per question, step and attempt."""
    return "-".join([question.value, *(str(part) for part in parts)])


def question_of(key: str) -> Question:
    """The question a pause key asks (the longest matching name: `csr-reuse` before `csr`)."""
    for question in sorted(Question, key=lambda q: -len(q.value)):
        if key == question.value or key.startswith(question.value + "-"):
            return question
    raise ValueError(f"'{key}' is not a pause key of the renewal")


# The fields in which a form asks for a person's name, as typed (see the module's note).
NAME_FIELDS: Final = ("answered_by", "requested_by", "approved_by", "confirmed_by")


def who_answered(answer: Mapping[str, object]) -> str:
    """The name a person gave in their answer; "" for forms that ask none."""
    for name in NAME_FIELDS:
        given = str(answer.get(name) or "").strip()
        if given:
            return given
    return ""


def wait_reason(description: str) -> str:
    """Why a step waited for a fix, from the form `wait_for_fix` showed."""
    paragraphs = description.split("\n\n")
    return paragraphs[1].strip() if len(paragraphs) > 1 else ""


class CsrReuseAnswer(RunInput):
    choice: Literal["Reuse the previous CSR and key", "Ask the systems team for a new CSR"] = Field(
        title="Previous CSR"
    )


class CsrAnswer(RunInput):
    csr_pem: str = Field(
        "",
        title="CSR (optional)",
        description="Paste the CSR (PEM) here, or leave empty when the .csr is attached to the "
        "ticket. The private key is never entered here: it must be attached to the ticket.",
        json_schema_extra={"format": "textarea"},
    )


class CaRequestAnswer(RunInput):
    request_number: str = Field(
        min_length=1, max_length=64, title="Request number given by the CA's portal"
    )
    requested_by: str = Field(min_length=1, max_length=120, title="Your name")


class UrgentApproval(RunInput):
    approved_by: str = Field(min_length=1, max_length=120, title="Manager who decided")
    approved: bool = Field(
        title="Approved for the urgent channel",
        description="Leave unticked when the manager did not approve: the request then goes "
        "through the normal channel.",
    )


class CertificateAnswer(RunInput):
    certificate_pem: str = Field(
        "",
        title="Certificate (PEM, optional)",
        description="Paste the .crt the CA sent, or leave empty when it is attached to a "
        "ticket of this renewal.",
        json_schema_extra={"format": "textarea"},
    )
    chain_pem: str = Field(
        "",
        title="Intermediate chain (PEM, optional)",
        json_schema_extra={"format": "textarea"},
    )


class InstallAnswer(RunInput):
    action: Literal["Check the endpoints again", "The new certificate is installed"] = Field(
        title="What now"
    )
    confirmed_by: str = Field("", max_length=120, title="Your name (when confirming)")


class RetireAnswer(RunInput):
    outcome: Literal["Revoked at the CA", "Retired without revocation"] = Field(
        title="What was done with the old certificate"
    )
    confirmed_by: str = Field(min_length=1, max_length=120, title="Your name")


class WaitAnswer(RunInput):
    action: Literal["Check again"] = Field(RECHECK, title="When the problem is fixed")


def ca_choice_form(cas: list[str]) -> type[RunInput]:
    """The CA question with the configured CAs as a dropdown."""
    # A Literal built at run time from the configuration: no static type can name it.
    choices: Any = Literal[tuple(cas)]
    return create_model(
        "CaChoiceAnswer",
        __base__=RunInput,
        ca=(choices, Field(title="CA named by the service owner")),
        answered_by=(str, Field(min_length=1, max_length=120, title="Your name")),
    )


def ask_until_valid(
    collect: Callable[[dict[str, str], int], T | str],
    accepted: type[T],
    form: type[RunInput],
    question: Question,
    describe: Callable[[str], str],
) -> T:
    """Collect, and while the outcome is a problem, show it and ask again.

    `collect(pasted, attempt)` returns the accepted record or what a person must
    fix. Each answer's non-empty text fields are kept for the next attempts, so
    a certificate pasted once need not be pasted again after fixing the chain.
    """
    pasted: dict[str, str] = {}
    for attempt in count(1):
        outcome = collect(pasted, attempt)
        if isinstance(outcome, accepted):
            return outcome
        answer = ask(form, pause_key(question, attempt), describe(str(outcome)))
        pasted |= {
            name: value
            for name, value in answer.model_dump().items()
            if isinstance(value, str) and value.strip()
        }
    raise AssertionError("unreachable")


def wait_for_fix(step: str, key: str, problem: Exception) -> None:
    """A step's outside system failed: wait for a person to fix it and say so."""
    ask(
        WaitAnswer,
        key,
        f"### Step '{step}' could not finish\n\n{problem}\n\n"
        "Nothing done so far is lost. Fix the cause, then resume to try again.",
    )


def ask(form: type[R], key: str, description: str) -> R:
    """Suspend the run until a person answers `form`; replays return the stored answer.

    `key` must be unique per question and attempt: on resume the flow runs again
    from the top, and a key already answered returns that answer at once.
    """
    return suspend_flow_run(
        wait_for_input=form.with_initial_data(description=description), key=key, timeout=None
    )


@dataclass(frozen=True)
class OpenQuestion:
    """The question a run waits on, as the Resume form shows it."""

    key: str
    description: str


def open_question(flow_run_id: UUID) -> OpenQuestion | None:
    """The run's question once it can be answered; None while there is none.

    Prefect marks the run Paused before it saves the form's schema and
    description, and refuses a resume until the schema is there ("Run input
    schema not found"): a question counts as asked only once its description
    (saved last) can be read.
    """
    from prefect import get_client
    from prefect.input.actions import read_flow_run_input
    from prefect.input.run_input import keyset_from_paused_state

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    if state is None or not state.is_paused() or not state.state_details.pause_key:
        return None
    keyset = keyset_from_paused_state(state)
    description = read_flow_run_input(keyset["description"], flow_run_id=flow_run_id)
    if description is None:
        return None
    return OpenQuestion(state.state_details.pause_key, str(description))
