"""Support staff take a renewal through the Prefect UI in a real browser, roles configured.

A Prefect server of the test's own (the test harness's serves no UI) runs the
renewal deployment; each form is opened from the run's page with Resume,
read, filled and submitted as a person does, and screenshotted under
tests/output/screenshots/. The people who work in tickets (systems team, CA)
act through the tracker, as in the other runbook tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures_browser import BrowserUser, RunPage
from tests.fixtures_renewal import RenewalLab, served_renewal_lab

# Eight forms, each resume starting a new flow process: on a loaded shared machine this
# took 600 s, the suite's hang guard, so the guard is doubled here.
pytestmark = [pytest.mark.prefect, pytest.mark.browser, pytest.mark.timeout(1200)]

ROLES = {"certificate_managers": ["anna"], "workflow_managers": ["marta"]}


@pytest.fixture(scope="module")
def ui_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenewalLab]:
    with served_renewal_lab(tmp_path_factory.mktemp("browser-renewal"), roles=ROLES) as lab:
        yield lab


def test_support_staff_answer_every_form_in_the_ui_and_an_outsider_is_refused(
    ui_lab: RenewalLab, browser_user: BrowserUser
) -> None:
    lab = ui_lab
    domain, _server, rid, people = lab.serve_renewal("browser")
    tracker = lab.tracker()
    run = lab.start("browser", urgent=True)
    ui = RunPage(browser_user, lab.run_page(run))

    # Step 1: the CSR form names the ticket the systems team works in.
    form = ui.open_form(f"Waiting for the CSR and key of {domain}")
    [csr_ticket] = tracker.find_tickets(f"{rid}-csr")
    [owner_ticket] = tracker.find_tickets(f"{rid}-owner")
    assert csr_ticket.key in form.description()
    people.attach_csr_and_key(tracker, csr_ticket.key)
    form.fill("Your login", "anna")
    form.screenshot("csr")
    form.submit()

    # Step 2: someone outside the certificate managers answers; the step asks again saying why.
    form = ui.open_form(f"Which CA renews {domain}?")
    form.choose("CA named by the service owner", "CESICAT")
    form.fill("Your login", "mallory")
    form.screenshot("ca-choice")
    form.submit()
    form = ui.open_form("The last answer was refused")
    assert "'mallory' is not one of the certificate managers (anna)" in form.description()
    refusals = [c for c in tracker.comments(owner_ticket.key) if "refused-ca-choice]" in c]
    assert len(refusals) == 1 and "mallory" in refusals[0]
    form.screenshot("ca-choice-refused")
    form.choose("CA named by the service owner", "CESICAT")
    form.fill("Your login", "anna")
    form.submit()

    # The urgent channel: a workflow manager approves.
    form = ui.open_form(f"Urgent renewal of {domain}")
    form.fill("Login of the manager who decided", "marta")
    form.tick("Approved for the urgent channel")
    form.screenshot("urgent-approval")
    form.submit()

    # Step 3: every value to copy into the CA's portal, and the tickets so far.
    form = ui.open_form(f"File the certificate request for {domain} at CESICAT")
    description = form.description()
    for shown in (
        csr_ticket.key,
        owner_ticket.key,
        "approved by marta",
        "Aplicació no es troba a Remedy",
        "DEPARTAMENT DE LA PRESIDENCIA",
        people.generated["csr"].decode().splitlines()[1],
    ):
        assert shown in description, shown
    form.fill("Request number given by the CA's portal", "REQ000777")
    form.fill("Your login", "anna")
    form.screenshot("ca-request")
    form.submit()

    # Step 4: the certificate the CA sent, pasted.
    form = ui.open_form(f"Waiting for the new certificate of {domain}")
    form.fill("Certificate (PEM)", people.sign().decode())
    form.fill("Your login", "anna")
    form.screenshot("certificate")
    form.submit()

    # Step 5: the systems team installs it; support staff ask for the check.
    form = ui.open_form(f"Waiting for the installation of {domain}")
    people.install()
    form.choose("What now", "Check the endpoints again")
    form.fill("Your login", "anna")
    form.screenshot("install")
    form.submit()

    # Step 6: retirement, and the run is done.
    form = ui.open_form(f"Retire the old certificate of {domain}")
    form.choose("What was done with the old certificate", "Revoked at the CA")
    form.fill("Your login", "anna")
    form.screenshot("retire")
    form.submit()
    ui.wait_state("Completed")

    owner_comments = "\n".join(tracker.comments(owner_ticket.key))
    assert "REQ000777" in owner_comments
    assert "[certrenew:retired]" in owner_comments
    assert (lab.settings.outbox_path() / f"{rid}-revoked.eml").exists()
    assert {tracker.get_ticket(t.key).status for t in tracker.find_tickets(rid)} == {"Done"}
    assert len(list(browser_user.screenshots.glob("*.png"))) == 8
