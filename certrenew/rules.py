"""The runbook's step rules, as plain functions a test calls without Prefect or a tracker.

Each answers one question a person would otherwise decide by looking: which
of the files on a ticket counts, in which order certificates are tried, which
CA the service owner named, how far back an archived CSR may be reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from certrenew.pki.files import FileKind, classify_file

T = TypeVar("T")

# Every comment certrenew posts carries this marker (and the step), so a step
# repeated after a crash never says the same thing twice, and the service
# owner's own words are told apart from ours.
COMMENT_MARKER = "[certrenew:"

# File names people give a certificate the CA sent (a `.pem` may as well be a key).
CERTIFICATE_SUFFIXES = (".crt", ".cer", ".der", ".p7b", ".p7c")

# A CSR archived by a renewal of this year or the two before may be offered again.
REUSE_WINDOW_YEARS = 3


# The last line of a step comment: `[certrenew:<step>] per <actor> · <run page>`, so the
# ticket alone says which step spoke, for whom and from which run. `certrenew history`
# reads it back, so like the marker it is a format kept here, not a text in templates/.
_FOOTER = re.compile(rf"^{re.escape(COMMENT_MARKER)}(?P<step>[^\]\s]+)\](?P<rest>.*)$")
FOOTER_BY = "per "
FOOTER_RUN = " · "


@dataclass(frozen=True)
class StepFooter:
    """What a step comment's last line says: the step, who answered (if a person did), the run."""

    step: str
    actor: str = ""
    run_url: str = ""


def step_marker(step: str) -> str:
    return f"{COMMENT_MARKER}{step}]"


def step_footer(step: str, actor: str, run_url: str) -> str:
    """The marker line closing a step comment; it starts with `step_marker(step)`."""
    name = " ".join(actor.replace(FOOTER_RUN.strip(), " ").split())  # one line, no separator
    who = f"{FOOTER_BY}{name}" if name else ""
    marked = f"{step_marker(step)} {who}".rstrip()
    return FOOTER_RUN.join(part for part in (marked, run_url) if part)


def is_step_comment(body: str, step: str) -> bool:
    """Whether certrenew posted `body` for `step` (its footer says so)."""
    footer = parse_step_footer(body)[1]
    return footer is not None and footer.step == step


def parse_step_footer(body: str) -> tuple[str, StepFooter | None]:
    """A comment's text and its step footer, when certrenew posted it.

    Comments posted before the actor was recorded end in `[certrenew:<step>] <run page>`.
    """
    text, _, last = body.rstrip().rpartition("\n")
    match = _FOOTER.match(last.strip())
    if match is None:
        return body.strip(), None
    rest = match["rest"].strip()
    who, _, run_url = rest.rpartition(FOOTER_RUN.strip())
    if not who and rest.startswith(FOOTER_BY):  # an actor and no run page
        who, run_url = rest, ""
    actor = who.strip().removeprefix(FOOTER_BY).strip()
    return text.strip(), StepFooter(match["step"], actor, run_url.strip())


def newest_of_each_kind(files: Iterable[tuple[T, bytes]]) -> dict[FileKind, tuple[T, bytes]]:
    """Per kind of file (CSR, key, certificate...), the last one attached wins.

    Files are told apart by their content, never by their names: a `.txt`
    holding a CSR is a CSR. `files` comes oldest first, as trackers list them.
    """
    found: dict[FileKind, tuple[T, bytes]] = {}
    for item, data in files:
        found[classify_file(data)] = (item, data)
    return found


def certificate_candidates(
    pasted: str, attached: Sequence[tuple[str, Sequence[tuple[str, bytes]]]]
) -> list[tuple[str, bytes]]:
    """The certificates to try, in order: what was pasted in the form, then each
    ticket's attachments newest first, keeping only certificates and PKCS#7 bundles.

    `attached` is (ticket, [(file name, bytes), ...oldest first]) per ticket, in
    the order the tickets should be searched. Each candidate is (where it came
    from, bytes), the first words naming it to people in ticket comments.
    """
    candidates: list[tuple[str, bytes]] = []
    if pasted.strip():
        candidates.append(("certificat enganxat al formulari", pasted.encode()))
    for ticket, files in attached:
        for name, data in reversed(files):
            if classify_file(data) in ("certificate", "pkcs7"):
                candidates.append((f"{name} a {ticket}", data))
    return candidates


def misplaced_certificates(
    attached: Sequence[tuple[str, Sequence[tuple[str, bytes]]]],
) -> list[tuple[str, bytes]]:
    """The attachments given as a certificate that are none, newest first, named like
    `certificate_candidates` names them.

    A person who attached the wrong file must hear what it is, not that nothing
    came. The step-1 CSR and key beside them are no such file, unless they are
    named like a certificate (`.crt`, `.cer`, ...) or a key file holds one too.
    """
    found: list[tuple[str, bytes]] = []
    for ticket, files in attached:
        for name, data in reversed(files):
            kind = classify_file(data)
            if kind in ("certificate", "pkcs7"):
                continue
            step_1_file = kind in ("csr", "private_key") and not (
                name.lower().endswith(CERTIFICATE_SUFFIXES) or b"CERTIFICATE-----" in data
            )
            if not step_1_file:
                found.append((f"{name} a {ticket}", data))
    return found


def ca_named_in(comments: Iterable[str], cas: Sequence[str]) -> str | None:
    """The CA a person named in a comment, when exactly one configured CA is named.

    certrenew's own comments (they carry the marker) are skipped, and a name
    counts only as a whole word in any case: 'EACAT' is not found in 'SEACATS'.
    """
    named = {
        ca
        for comment in comments
        if COMMENT_MARKER not in comment
        for ca in cas
        if re.search(rf"\b{re.escape(ca)}\b", comment, re.IGNORECASE)
    }
    return named.pop() if len(named) == 1 else None


def reuse_years(this_year: int) -> list[int]:
    """The archive years searched for a CSR to reuse, newest first."""
    return [this_year - back for back in range(REUSE_WINDOW_YEARS)]


def role_refusal(login: str, members: Sequence[str], role: str) -> str | None:
    """Why `login` may not answer a step of `role`, or None when it may.

    Logins compare without regard to case or surrounding spaces, as Jira's do.
    No members configured means the role is open to anyone.
    """
    if not members:
        return None
    if login.strip().casefold() in {member.strip().casefold() for member in members}:
        return None
    return (
        f"'{login}' is not one of the {role} ({', '.join(members)}): "
        "one of them must answer this step, with their own login"
    )
