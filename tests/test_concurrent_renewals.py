"""Two renewals of different certificates at once never mix files, tickets or answers.

Both runs are served by the same serving process; each question of one is
answered together with the same question of the other, so their processes run
side by side against the same tracker file and archive. Each renewal's answers
carry its own request number and login, and everything each renewal left
behind must carry only its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import NAME_FIELDS, Question, pause_key
from tests.fixtures_renewal import RenewalLab, served_serial

pytestmark = pytest.mark.prefect

QUESTIONS = (
    pause_key(Question.CSR, 1),
    Question.CA_CHOICE,
    Question.CA_REQUEST,
    pause_key(Question.CERTIFICATE, 1),
    pause_key(Question.INSTALL, 1),
    Question.RETIRE,
)


def test_two_renewals_at_once_keep_their_own_tickets_files_and_answers(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    renewals = {}
    for name, login, number in (("alpha", "anna", "REQ-ALPHA-1"), ("beta", "bernat", "REQ-BETA-2")):
        domain, server = lab.serve_certificate(f"together-{name}")
        rid = renewal_id(domain, served_serial(lab, f"together-{name}"))
        renewals[name] = (domain, rid, lab.people(domain, server), login, number)
    runs = {name: lab.start(f"together-{name}") for name in renewals}

    for key in QUESTIONS:
        answers = {}
        for name, run in runs.items():
            _, rid, people, login, number = renewals[name]
            run.wait_paused(key)
            answer = people.answer(key, rid)
            answer |= {field: login for field in NAME_FIELDS if field in answer}
            if "request_number" in answer:
                answer["request_number"] = number
            answers[name] = answer
        for name, run in runs.items():  # both resumed at once: their processes overlap
            run.resume(**answers[name])
    results = {name: run.wait_final() for name, run in runs.items()}

    tracker, setup = lab.tracker(), lab.archive()
    for name, (domain, rid, people, login, number) in renewals.items():
        other_domain, other_rid, _, other_login, other_number = renewals[
            "beta" if name == "alpha" else "alpha"
        ]
        assert results[name].is_completed(), name
        result = results[name].result()
        assert result["ca_request"] == number
        tickets = tracker.find_tickets(rid)
        assert sorted(t.key for t in tickets) == sorted(k for k in result["tickets"].values() if k)
        assert not {t.key for t in tickets} & {t.key for t in tracker.find_tickets(other_rid)}
        texts = []
        for ticket in tickets:
            # The lab's tracker is the local one, which also offers BrowsableTracker.description.
            text = tracker.description(ticket.key)  # type: ignore[attr-defined]
            text += "\n".join(tracker.comments(ticket.key))
            assert domain in text and other_domain not in text, ticket.key
            assert other_number not in text and other_login not in text, ticket.key
            texts.append(text)
        assert number in "".join(texts) and login in "".join(texts)
        names = renewal_file_names(domain)
        folder = renewal_folder(setup.root_folder, "CESICAT", datetime.now(UTC).year, domain)
        assert setup.archive.read_file(folder, names["key"]) == people.generated["key"]
        assert setup.archive.read_file(folder, names["crt"]) == people.generated["crt"]
        manifest = json.loads(setup.archive.read_file(folder, "manifest.json"))
        assert manifest["domain"] == domain
        assert set(manifest["tickets"].values()) == {t.key for t in tickets} - {
            result["tickets"]["install"]
        }
