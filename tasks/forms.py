"""The questions only people can answer, as forms in the Prefect UI.

Each form suspends the run (nothing is held while people take days; the
process stays only for a short warm window, see certrenew.tasks.waiting) and has a
markdown description saying exactly what to do. Form input is stored by
Prefect in its database, so no form ever asks for a private key: keys travel
only as ticket attachments or archived files.

Names typed in a form are recorded as typed: the open-source Prefect server has
no user accounts, so they are a statement, not an identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import count
from typing import Any, ClassVar, Final, Protocol, TypeVar, cast
from uuid import UUID

from prefect.input import RunInput
from pydantic import Field, create_model

from certrenew.errors import ServiceUnavailable
from certrenew.tasks.waiting import (
    WARM_WAIT,
    ask_again,
    pause_and_wait,
    question_keyset,
    suspend_at,
    suspension_keyset,
    waits_warm,
)

R = TypeVar("R", bound="PersonAnswer")
T = TypeVar("T")


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
    P12 = "p12"
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


# Who is answering: every form asks, and roles (certrenew.tasks.people) check it.
LOGIN_TITLE: Final = "Your login"
# The fields in which a form asks for the answerer's login (each form's `who_field`).
NAME_FIELDS: Final = ("answered_by", "requested_by", "approved_by", "confirmed_by")
PROBLEM_HEADING: Final = "**What was wrong with the last answer**"


def who_answered(answer: Mapping[str, object]) -> str:
    """The login a person gave in a stored answer; "" for forms that ask none."""
    for name in NAME_FIELDS:
        given = str(answer.get(name) or "").strip()
        if given:
            return given
    return ""


def wait_reason(description: str) -> str:
    """Why a step waited for a fix, read back from the form `form_text` wrote."""
    if PROBLEM_HEADING not in description:
        return ""
    problem = description.split(PROBLEM_HEADING, 1)[1]
    return problem.split("\n\n**", 1)[0].strip()


# What a person types as one word or name (a login, a request number): one line, not
# blank, without control characters or bidirectional marks (they reorder what is
# shown around them), and without `<`, `>`, backticks or backslashes, which would
# turn into HTML or code where the name is shown again (form descriptions in
# markdown, the report). Brackets stay allowed: people write `Anna (support)`. The
# Prefect server checks answers against this before it resumes the run.
_NOT_TYPED = r"\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069<>`\\"
ONE_NAME = rf"^[^{_NOT_TYPED}]*[^\s{_NOT_TYPED}][^{_NOT_TYPED}]*$"
# A pasted certificate with its whole chain is a few KiB; a CSR less.
MAX_PASTED_CHARS = 64 * 1024


def as_typed(text: str) -> str:
    """A name a person typed, for markdown: shown as typed, never as a link or a table cell.

    `ONE_NAME` already keeps out HTML and code; brackets and bars stay allowed in
    names, so they are escaped where markdown would make a link or split a table.
    """
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("|", "\\|")


def _login(title: str = LOGIN_TITLE) -> Any:
    return Field(min_length=1, max_length=120, pattern=ONE_NAME, title=title)


def _pasted(title: str, description: str) -> Any:
    return Field(
        "",
        max_length=MAX_PASTED_CHARS,
        title=title,
        description=description,
        json_schema_extra={"format": "textarea"},
    )


class CsrReuseChoice(StrEnum):
    REUSE = "Reuse the previous CSR and key"
    NEW = "Ask the systems team for a new CSR"


class InstallAction(StrEnum):
    CHECK = "Check the endpoints again"
    CONFIRM = "The new certificate is installed"


class RetireOutcome(StrEnum):
    REVOKED = "Revoked at the CA"
    RETIRED = "Retired without revocation"


class WaitAction(StrEnum):
    CHECK = "Check again"


class PersonAnswer(RunInput):
    """A form's answer, with the field that says who gave it."""

    who_field: ClassVar[str] = "answered_by"

    def who(self) -> str:
        return str(getattr(self, self.who_field)).strip()


class CsrReuseAnswer(PersonAnswer):
    choice: CsrReuseChoice = Field(title="Previous CSR")
    answered_by: str = _login()


class CsrAnswer(PersonAnswer):
    csr_pem: str = _pasted(
        "CSR (PEM)",
        "Paste the CSR here, or leave empty when the .csr is attached to the "
        "ticket. The private key is never entered here: it must be attached to the ticket.",
    )
    answered_by: str = _login()


class CaRequestAnswer(PersonAnswer):
    who_field: ClassVar[str] = "requested_by"
    request_number: str = Field(
        min_length=1,
        max_length=64,
        pattern=ONE_NAME,
        title="Request number given by the CA's portal",
    )
    requested_by: str = _login()


class UrgentApproval(PersonAnswer):
    who_field: ClassVar[str] = "approved_by"
    approved_by: str = _login("Login of the manager who decided")
    approved: bool = Field(
        strict=True,  # "no" is not False: only the switch's true or false
        title="Approved for the urgent channel",
        description="Leave unticked when the manager did not approve: the request then goes "
        "through the normal channel.",
    )


class CertificateAnswer(PersonAnswer):
    certificate_pem: str = _pasted(
        "Certificate (PEM)",
        "Paste the .crt the CA sent, or leave empty when it is attached to a "
        "ticket of this renewal.",
    )
    chain_pem: str = _pasted(
        "Intermediate chain (PEM)",
        "Only when the CA sent the intermediate certificates separately.",
    )
    answered_by: str = _login()


class P12Answer(PersonAnswer):
    """The .p12 the CA handed out, and its password.

    Prefect stores a form's answer in its database; the password field is blanked
    there as soon as the password is in the password safe (`forget_answers`).
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("p12_password",)
    p12_path: str = Field(
        "",
        max_length=4096,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        title="Path of the .p12 on the machine running the flow",
        description="Or leave empty when the .p12 is attached to the renewal's ticket.",
    )
    p12_password: str = Field(
        "",
        max_length=1024,
        title="Password of the .p12",
        description="Goes to the team's password safe only; blanked in this form's stored "
        "answer as soon as it is there.",
        json_schema_extra={"format": "password"},
    )
    answered_by: str = _login()


class InstallAnswer(PersonAnswer):
    who_field: ClassVar[str] = "confirmed_by"
    action: InstallAction = Field(title="What now")
    confirmed_by: str = _login()


class RetireAnswer(PersonAnswer):
    who_field: ClassVar[str] = "confirmed_by"
    outcome: RetireOutcome = Field(title="What was done with the old certificate")
    confirmed_by: str = _login()


class WaitAnswer(PersonAnswer):
    action: WaitAction = Field(WaitAction.CHECK, title="When the problem is fixed")
    answered_by: str = _login()


def form_text(
    heading: str, *, so_far: Sequence[str], now: str, after: str, problem: str = ""
) -> str:
    """A form's description in one shape: what happened, what was wrong, what to do, what next.

    People answer these forms days apart and without a manual, so each says
    the whole story so far rather than relying on what they remember.
    """
    parts = [f"### {heading}"]
    if so_far:
        parts.append("**So far**\n\n" + "\n".join(f"- {line}" for line in so_far))
    if problem:
        parts.append(f"{PROBLEM_HEADING}\n\n{problem}")
    parts.append(f"**What to do now**\n\n{now}")
    parts.append(f"**After you submit**\n\n{after}")
    return "\n\n".join(parts)


def ca_choice_form(cas: list[str]) -> type[PersonAnswer]:
    """The CA question with the configured CAs as a dropdown (an enum built from them)."""
    names = StrEnum("CaName", {ca: ca for ca in cas})  # type: ignore[misc]
    return create_model(
        "CaChoiceAnswer",
        __base__=PersonAnswer,
        ca=(names, Field(title="CA named by the service owner")),
        answered_by=(str, _login()),
    )


class Asker(Protocol):
    """Asks a form and returns its answer: `ask`, or one that also checks who answered."""

    def __call__(self, form: type[R], key: str, description: str) -> R:
        """The answer to `form`, asked under the pause `key` with `description`."""
        ...


def ask_until_valid(
    collect: Callable[[dict[str, str], int], T | str],
    accepted: type[T],
    form: type[PersonAnswer],
    question: Question,
    describe: Callable[[str], str],
    asker: Asker,
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
        answer = asker(form, pause_key(question, attempt), describe(str(outcome)))
        pasted |= {
            name: value
            for name, value in answer.model_dump().items()
            if isinstance(value, str) and value.strip() and name != answer.who_field
        }
    raise AssertionError("unreachable")


def forget_answers(question: Question, fields: Sequence[str]) -> int:
    """Blank `fields` in every stored answer of this run to `question`; how many changed.

    Prefect keeps a resumed form's input under `suspended-<pause key>-response`
    and reads it again on every replay of the run, so the answer stays, with the
    secret fields empty: a replay still finds it, and the step that used the
    secret returns its stored result without needing it again.
    """
    from prefect.input.actions import (
        create_flow_run_input,
        delete_flow_run_input,
        read_flow_run_input,
    )
    from prefect.input.run_input import keyset_from_base_key
    from prefect.runtime import flow_run

    current = flow_run.get_id()
    assert current, "forget_answers runs inside a flow run"
    run_id = UUID(current)
    changed = 0
    for attempt in count(1):
        key = keyset_from_base_key(f"suspended-{pause_key(question, attempt)}")["response"]
        stored = read_flow_run_input(key, flow_run_id=run_id)
        if not isinstance(stored, dict):
            return changed
        if any(stored.get(name) for name in fields):
            delete_flow_run_input(key, flow_run_id=run_id)
            create_flow_run_input(key, {**stored, **dict.fromkeys(fields, "")}, flow_run_id=run_id)
            changed += 1
    return changed


def wait_for_fix(step: str, key: str, problem: Exception) -> None:
    """A step's outside system failed: wait for a person to fix it and say so."""
    ask(WaitAnswer, key, wait_text(step, problem))


def wait_text(step: str, problem: Exception) -> str:
    """The wait form's description; `certrenew status` shows its problem (`wait_reason`).

    When the system was only away (ServiceUnavailable), the form says that the
    serving process retries by itself (`retries_by_itself` finds that line).
    """
    after = "The step is tried again; if it fails again, this form comes back with the new reason."
    if isinstance(problem, ServiceUnavailable):
        after += f" {RETRIES_BY_ITSELF}; submit to try at once."
    return form_text(
        f"Step '{step}' could not finish",
        so_far=["Nothing done so far is lost: finished steps keep their results."],
        problem=str(problem),
        now="Fix the cause (the message above says what failed and where), then submit.",
        after=after,
    )


RETRIES_BY_ITSELF: Final = (
    "While `certrenew serve` runs, it tries the step again by itself after a pause that grows "
    "each time ([recovery] outage_retry_seconds)"
)
# Who answers a wait form when the serving process retries the step by itself.
RETRY_ANSWERER: Final = "certrenew (retried by itself)"


def retries_by_itself(description: str) -> bool:
    """Whether a wait form is one the serving process may answer (its system was away)."""
    return RETRIES_BY_ITSELF in description


def ask(form: type[R], key: str, description: str) -> R:
    """Suspend the run until a person answers `form`; replays return the stored answer.

    `key` must be unique per question and attempt: on resume the flow runs again
    from the top, and a key already answered returns that answer at once. With
    a warm window (certrenew.tasks.waiting) the process stays that long after
    asking, and an answer within it goes on in this process.
    """
    answered = stored_answer(form, key)
    if answered is not None:
        return answered
    ask_again(key)
    warm = WARM_WAIT.get()
    if warm and waits_warm(warm):
        return pause_and_wait(form, key, description, warm.seconds)
    return suspend_at(form, key, description)


def stored_answer(form: type[R], key: str) -> R | None:
    """The answer this run already got to `key`, read from the run's saved input.

    Prefect itself skips a pause it has seen, but forgets the pauses it has seen
    when a run leaves a terminal state: a crashed run started again (by the
    recovery automation, or Retry in the UI) would ask every question anew. The
    answers are kept with the run, so they are read from there.
    """
    from prefect.input.actions import read_flow_run_input

    keyset = suspension_keyset(key)
    if read_flow_run_input(keyset["response"]) is None:
        return None
    # Called from sync code: the answer itself, not the coroutine async_dispatch allows for.
    return cast(R, form.load(keyset))


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

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    if state is None or not state.is_paused() or not state.state_details.pause_key:
        return None
    keyset = question_keyset(state)
    description = read_flow_run_input(keyset["description"], flow_run_id=flow_run_id)
    if description is None:
        return None
    return OpenQuestion(state.state_details.pause_key, str(description))
