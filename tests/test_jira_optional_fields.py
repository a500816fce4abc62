"""Every field Atlassian's OpenAPI description does not mark required may be absent.

The Jira test server leaves optional fields out of its answers on command
(`JiraServer.omit_optional`). The whole chain of tracker calls a renewal and
`certrenew history` make runs once with nothing left out, to learn which
optional fields its answers hold (more than a hundred), then with every one
left out that is not in NEEDED: it must complete. Each NEEDED field left out
alone must stop it with one clear message naming the field. Nothing may end in
a KeyError or an AttributeError.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from certrenew.adapters.tracker import NewTicket, ensure_ticket
from certrenew.adapters.tracker.jira import IncompleteAnswer, JiraTracker
from certrenew.config import JiraSettings
from certrenew.errors import CertRenewError
from certrenew.lab.jira_optional import OptionalFields
from certrenew.lab.jira_server import JiraServer
from tests.fixtures_jira import FAST_RETRIES
from tests.jira_openapi import JiraSpec

BOTH = pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)

# Without these nothing can be done, by us or by the `jira` library: the chain stops
# with a message naming the field. Every other optional field must not stop it.
NEEDED = {
    "SearchResults.issues": "which tickets carry the label",
    "SearchAndReconcileResults.issues": "which tickets carry the label",
    "FieldDetails.id": "the library maps field names before searching",
    "IssueBean.key": "which ticket an answer is about",
    "Attachment.id": "which attachment to download or delete",
    "Attachment.size": "the library reads it when an upload is answered",
    "AttachmentMetadata.content": "where to download an attachment from",
    "Comment.body": "whether a step's comment is already there",
    "PageOfComments.comments": "the comments themselves",
    "IssueLinkTypes.issueLinkTypes": "the library looks the link type up",
    "IssueLinkType.inward": "the library reads it when linking",
    "IssueLinkType.outward": "the library reads it when linking",
    "IssueLinkType.name": "whether the link is already there",
    "LinkedIssue.key": "whether the link is already there",
    "Transitions.transitions": "how to close the ticket",
    "IssueTransition.id": "which transition to take",
    "IssueTransition.name": "which transition closes the ticket",
    "Project.issueTypes": "what `certrenew check jira` checks",
}


def chain(tracker: JiraTracker) -> None:
    """What a renewal, `certrenew history` and `certrenew check jira` ask of Jira."""
    csr = ensure_ticket(tracker, NewTicket("SIS", "CSR", "CSR", "certrenew-o-csr"))
    owner = ensure_ticket(tracker, NewTicket("ST", "CA?", "Quina CA?", "certrenew-o-owner"))
    tracker.find_tickets("certrenew-o-csr")
    tracker.get_ticket(csr.key)
    tracker.link_tickets(owner.key, csr.key, "Relates")
    tracker.links(owner.key)
    tracker.add_comment(csr.key, "CSR rebut.")
    tracker.comments(csr.key)
    added = tracker.add_attachment(csr.key, "seu.key", b"key bytes")
    tracker.attachments(csr.key)
    tracker.download_attachment(csr.key, added)
    tracker.delete_attachment(csr.key, added)
    tracker.close_ticket(csr.key)
    tracker.close_ticket(csr.key)
    tracker.ticket_history(csr.key)
    tracker.describe()
    tracker.whoami()
    tracker.project_issue_types("SIS")
    tracker.link_type_names()
    tracker.transition_names(owner.key)


def run_chain(
    deployment: str, spec: JiraSpec, omit: Callable[[str], bool], *, check: bool = False
) -> tuple[OptionalFields, Exception | None]:
    """The chain against a fresh server; `check` validates its answers (slow: once is enough)."""
    server = JiraServer(deployment).start()
    try:
        settings = JiraSettings(url=server.url, token=SecretStr(server.token or ""), **FAST_RETRIES)
        tracker = JiraTracker(settings, sleep=lambda _: None)
        tracker.whoami()  # connected with whole answers: the library needs serverInfo
        fields = server.omit_optional(spec.document, omit)
        try:
            chain(tracker)
        except Exception as exc:
            return fields, exc
        return fields, None
    finally:
        server.stop()
        assert not check or [p for e in server.exchanges for p in spec.problems(e)] == []


@BOTH
def test_status_without_its_category_still_closes_the_ticket(
    jira_server: JiraServer,
    jira_tracker: JiraTracker,
    jira_spec: JiraSpec,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The last step of the runbook once failed here with KeyError: 'statusCategory'."""
    dropped = jira_server.omit_optional(
        jira_spec.document, lambda name: name == "StatusDetails.statusCategory"
    )
    ticket = ensure_ticket(jira_tracker, NewTicket("SIS", "CSR", "CSR", "certrenew-o-csr"))
    jira_tracker.close_ticket(ticket.key)
    assert jira_server.issues[ticket.key].status == "Done"
    with caplog.at_level(logging.WARNING):
        jira_tracker.close_ticket(ticket.key)  # Done offers no way to Done: taken as closed
    assert len(jira_server.calls("POST", r"/transitions$")) == 1
    assert "taken as already closed" in caplog.text
    assert dropped.dropped == {"StatusDetails.statusCategory"}


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_every_optional_field_the_renewal_can_do_without_left_out_at_once(
    jira_spec: JiraSpec, deployment: str
) -> None:
    whole, failure = run_chain(deployment, jira_spec, lambda _: False, check=True)
    assert failure is None and whole.dropped == set()
    assert "StatusDetails.statusCategory" in whole.seen and len(whole.seen) > 100
    # The list of needed fields stays true to what the chain meets.
    assert {name for name in NEEDED if "Search" not in name} <= whole.seen
    left_out, failure = run_chain(
        deployment, jira_spec, lambda name: name not in NEEDED, check=True
    )
    assert failure is None, repr(failure)
    # Parents left out hide their children, and a create answered without its key is
    # followed by a search, not a read: so fewer than `seen`, but the ones that matter.
    assert not left_out.dropped & set(NEEDED)
    assert {"CreatedIssue.key", "fields.status", "fields.summary", "Comment.created"} <= (
        left_out.dropped
    )


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_the_optional_fields_of_each_shape_left_out_in_turn(
    jira_spec: JiraSpec, deployment: str
) -> None:
    """Children hidden above (a status's category, a change's date) are left out here."""
    seen = run_chain(deployment, jira_spec, lambda _: False)[0].seen
    shapes = sorted({name.split(".")[0] for name in seen - set(NEEDED)})
    assert {"StatusDetails", "Changelog", "Attachment", "fields"} <= set(shapes)
    for shape in shapes:

        def omit(name: str, shape: str = shape) -> bool:
            return name.startswith(f"{shape}.") and name not in NEEDED

        left_out, failure = run_chain(deployment, jira_spec, omit)
        assert failure is None, f"{shape}'s optional fields left out: {failure!r}"
        assert left_out.dropped, shape


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_each_needed_field_left_out_stops_with_a_message_naming_it(
    jira_spec: JiraSpec, deployment: str
) -> None:
    seen = run_chain(deployment, jira_spec, lambda _: False)[0].seen
    print(f"\n{deployment}: needed field left out -> what the renewal is told")
    for name in sorted(set(NEEDED) & seen):
        fields, failure = run_chain(deployment, jira_spec, name.__eq__)
        assert fields.dropped == {name}
        assert isinstance(failure, CertRenewError), f"{name} left out: {failure!r}"
        said = str(failure)
        print(f"  {name:35} {type(failure).__name__}: {said[:90]}")
        assert failure.__context__ is None
        if name == "IssueTransition.name":  # no transition is known by the configured name
            assert "jira.done_transition" in said, said
        else:
            assert f"'{name.split('.')[-1]}'" in said and "then resume" in said, said


@BOTH
def test_an_issue_without_its_key_is_a_clear_error(
    jira_server: JiraServer, jira_tracker: JiraTracker, jira_spec: JiraSpec
) -> None:
    ensure_ticket(jira_tracker, NewTicket("SIS", "CSR", "CSR", "certrenew-o-csr"))
    jira_server.omit_optional(jira_spec.document, lambda name: name == "IssueBean.key")
    with pytest.raises(IncompleteAnswer, match="an issue without its 'key'") as caught:
        jira_tracker.find_tickets("certrenew-o-csr")
    assert caught.value.__context__ is None


@BOTH
def test_a_create_answered_without_a_key_finds_the_ticket_by_its_label(
    jira_server: JiraServer, jira_tracker: JiraTracker, jira_spec: JiraSpec
) -> None:
    jira_server.omit_optional(jira_spec.document, lambda name: name == "CreatedIssue.key")
    ticket = ensure_ticket(jira_tracker, NewTicket("SIS", "CSR", "CSR", "certrenew-o-csr"))
    assert [i.key for i in jira_server.issues_labelled("certrenew-o-csr")] == [ticket.key]
    assert len(jira_server.calls("POST", r"/issue$")) == 1
