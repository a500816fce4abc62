"""The renewal runbook end to end on a real Prefect API, people answering through the API.

Runs execute in a real serving process; each human step suspends the run and
is resumed with input exactly as the UI's Resume form does.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certrenew.deployments.demo import DEMO_TIMINGS
from certrenew.lab.tls import build_csr
from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.pki.certs import serial_hex
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import Question, pause_key
from tests.fixtures_renewal import RenewalLab, example_config, served_serial

pytestmark = pytest.mark.prefect


def expired_certificate_for(lab: RenewalLab, csr_pem: bytes, domain: str) -> bytes:
    """Issued by the right CA for the right key and name, but already expired."""
    csr = x509.load_pem_x509_csr(csr_pem)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(lab.ca.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=100))
        .not_valid_after(now - timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(lab.ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def key_lines(key_pem: bytes) -> list[str]:
    return [line for line in key_pem.decode().splitlines() if "-----" not in line]


def test_runbook_re_asks_after_every_wrong_answer_and_completes(renewal_lab: RenewalLab) -> None:
    lab = renewal_lab
    domain, server = lab.serve_certificate("wrong-answers")
    old_serial = served_serial(lab, "wrong-answers")
    rid = renewal_id(domain, old_serial)
    tracker = lab.tracker()
    subject = lab.settings.csr
    assert subject
    run = lab.start("wrong-answers")

    # Step 1: nothing attached yet; then a CSR for another domain.
    assert "has no .csr and .key attached yet" in run.wait_paused("csr-1")
    [csr_ticket] = tracker.find_tickets(f"{rid}-csr")
    [owner_ticket] = tracker.find_tickets(f"{rid}-owner")
    assert tracker.get_ticket(owner_ticket.key).summary.startswith("Renovació del certificat")
    wrong_csr, wrong_key = build_csr(subject, "other.example.cat")
    tracker.add_attachment(csr_ticket.key, "wrong.csr", wrong_csr)
    tracker.add_attachment(csr_ticket.key, "wrong.key", wrong_key)
    run.resume(answered_by="anna")
    description = run.wait_paused("csr-2")
    assert "other.example.cat" in description
    assert any("other.example.cat" in c for c in tracker.comments(csr_ticket.key))

    # ...then the right CSR with a key that is not its own.
    good_csr, good_key = build_csr(subject, domain)
    tracker.add_attachment(csr_ticket.key, f"{domain}.csr", good_csr)
    tracker.add_attachment(csr_ticket.key, "stray.key", build_csr(subject, domain)[1])
    run.resume(answered_by="anna")
    assert "does not belong to the csr" in run.wait_paused("csr-3").lower()

    # ...then garbage pasted in the form instead of a CSR.
    tracker.add_attachment(csr_ticket.key, f"{domain}.key", good_key)
    run.resume(answered_by="anna", csr_pem="this is not a certificate signing request")
    assert "csr" in run.wait_paused("csr-4").lower()

    # ...then a CSR with a weak key.
    run.resume(answered_by="anna", csr_pem=build_csr(subject, domain, bits=1024)[0].decode())
    assert "1024" in run.wait_paused("csr-5")
    run.resume(answered_by="anna", csr_pem=good_csr.decode())

    # Step 2: a CA that is not offered is refused by the form; the run keeps waiting.
    run.wait_paused("ca-choice")
    with pytest.raises(RuntimeError, match="Cannot resume"):
        run.resume(ca="Let's Encrypt", answered_by="Anna")
    assert run.state().state_details.pause_key == "ca-choice"
    run.resume(ca="CESICAT", answered_by="Anna (support)")

    # Step 3: the form shows every value to copy; an empty request number is refused.
    description = run.wait_paused("ca-request")
    for value in ("Aplicació no es troba a Remedy", "DEPARTAMENT DE LA PRESIDENCIA", domain):
        assert value in description
    assert good_csr.decode().strip().splitlines()[1] in description
    with pytest.raises(RuntimeError, match="Cannot resume"):
        run.resume(request_number="", requested_by="Anna")
    run.resume(request_number="REQ000777", requested_by="Anna (support)")

    # Step 4: garbage, an expired certificate, a certificate for another key; then the real one.
    assert "no certificate" in run.wait_paused("certificate-1")
    run.resume(
        answered_by="anna",
        certificate_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    run.wait_paused("certificate-2")
    run.resume(
        answered_by="anna", certificate_pem=expired_certificate_for(lab, good_csr, domain).decode()
    )
    assert "expired" in run.wait_paused("certificate-3").lower()
    other = lab.ca.issue(domain, days=90, key_type="rsa")
    run.resume(answered_by="anna", certificate_pem=other.cert_pem.decode())
    assert "does not match the key" in run.wait_paused("certificate-4")
    crt = lab.ca.sign_csr(good_csr, days=180)
    tracker.add_attachment(owner_ticket.key, f"{domain}.crt", crt)
    run.resume(answered_by="anna")

    # Step 7: not installed yet, so the run says which endpoint still serves the old one.
    description = run.wait_paused("install-1")
    assert server.address in description and old_serial in description
    lab.install(server, crt, good_key)
    run.resume(action="Check the endpoints again", confirmed_by="anna")

    # Step 8: retire, then the run completes.
    assert old_serial in run.wait_paused("retire")
    run.resume(outcome="Revoked at the CA", confirmed_by="Anna (support)")
    assert run.wait_final().is_completed()

    new_serial = served_serial(lab, "wrong-answers")
    assert new_serial == serial_hex(x509.load_pem_x509_certificate(crt).serial_number)
    [install_ticket] = tracker.find_tickets(f"{rid}-install")
    links = {link.other_key for link in tracker.links(install_ticket.key)}
    assert links == {csr_ticket.key, owner_ticket.key}
    for ticket in (csr_ticket, owner_ticket, install_ticket):
        assert tracker.get_ticket(ticket.key).status == "Done"

    # The key left the ticket for the archive, and the archive holds exactly the renewal.
    setup = lab.archive()
    folder = f"CERTIFICATS/CDS/CESICAT/{datetime.now(UTC).year}/{domain}"
    names = sorted(f.name for f in setup.archive.list_files(folder))
    assert names == sorted([f"{domain}.csr", f"{domain}.key", f"{domain}.crt", "manifest.json"])
    assert setup.archive.read_file(folder, f"{domain}.key") == good_key
    attached = {a.filename for a in tracker.attachments(csr_ticket.key)}
    assert f"{domain}.key" not in attached
    manifest = json.loads(setup.archive.read_file(folder, "manifest.json"))
    assert manifest["old_certificate"]["serial"] == old_serial
    assert manifest["new_certificate"]["serial"] == new_serial
    assert manifest["tickets"] == {"csr": csr_ticket.key, "service_owner": owner_ticket.key}
    notice = lab.settings.outbox_path() / f"{rid}-revoked.eml"
    message = email.message_from_bytes(notice.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Certificat revocat: wrong-answers"
    body = message.get_content()
    assert old_serial in body and new_serial in body

    # The private key reached no ticket text, no log line, no form and no stored result.
    secret = key_lines(good_key)
    # The lab's tracker is the local one, which also offers BrowsableTracker.description.
    texts = [tracker.description(t.key) for t in (csr_ticket, owner_ticket, install_ticket)]  # type: ignore[attr-defined]
    texts += [
        c for t in (csr_ticket, owner_ticket, install_ticket) for c in tracker.comments(t.key)
    ]
    texts += run.logs()
    texts += [manifest_text := setup.archive.read_file(folder, "manifest.json").decode()]
    assert "PRIVATE KEY" not in manifest_text
    stored = [p.read_bytes() for p in (lab.home / "storage").rglob("*") if p.is_file()]
    assert stored, "the steps' results were persisted"
    for line in secret:
        assert not any(line in text for text in texts)
        assert not any(line.encode() in blob for blob in stored)


def test_resume_after_lost_results_and_second_run_open_nothing_twice(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    domain, _server, rid, people = lab.serve_renewal("exactly-once")
    tracker = lab.tracker()
    run = lab.start("exactly-once")
    run.answer_each(people, rid, "csr-1", "ca-choice")
    run.wait_paused("ca-request")

    # A second run for the same certificate stops at once: the first is in progress.
    second = lab.start("exactly-once")
    assert second.wait_final().is_completed()
    assert len(tracker.find_tickets(f"{rid}-csr")) == 1

    # Every stored step result is lost (a crash after the side effect, before the cache
    # write); resuming repeats the steps, and the tracker's labels keep them single.
    for path in (lab.home / "storage").rglob("*"):
        if path.is_file():
            path.unlink()
    comments_before = tracker.comments(tracker.find_tickets(f"{rid}-csr")[0].key)
    run.resume(**people.answer("ca-request", rid))
    run.answer_each(people, rid, "certificate-1", "install-1", "retire")
    assert run.wait_final().is_completed()

    for kind in ("csr", "owner", "install"):
        assert len(tracker.find_tickets(f"{rid}-{kind}")) == 1, kind
    csr_key = tracker.find_tickets(f"{rid}-csr")[0].key
    after = tracker.comments(csr_key)
    assert after[: len(comments_before)] == comments_before
    markers = [line for c in after for line in c.splitlines() if line.startswith("[certrenew:")]
    assert len(markers) == len({m.split()[0] for m in markers}), "a step commented twice"
    setup = lab.archive()
    folder = f"CERTIFICATS/CDS/CESICAT/{datetime.now(UTC).year}/{domain}"
    assert not [f.name for f in setup.archive.list_files(folder) if ".old-" in f.name]


def test_certificate_already_renewed_stops_without_tickets(renewal_lab: RenewalLab) -> None:
    lab = renewal_lab
    domain, _ = lab.serve_certificate("fresh", days=200)
    rid = renewal_id(domain, served_serial(lab, "fresh"))
    run = lab.start("fresh")
    assert run.wait_final().is_completed()
    assert lab.tracker().find_tickets(f"{rid}-csr") == []


def test_a_reused_csr_opens_no_csr_ticket_and_every_step_uses_the_owner_ticket(
    renewal_lab: RenewalLab,
) -> None:
    """The reuse branch: the CSR and key come from the archive; no ticket to the systems team."""
    lab = renewal_lab
    domain, server = lab.serve_certificate("reused")
    old_serial = served_serial(lab, "reused")
    rid = renewal_id(domain, old_serial)
    tracker = lab.tracker()
    assert lab.settings.csr
    csr_pem, key_pem = build_csr(lab.settings.csr.rules(), domain)
    setup = lab.archive()
    previous = renewal_folder(setup.root_folder, "CESICAT", datetime.now(UTC).year - 1, domain)
    names = renewal_file_names(domain)
    setup.archive.ensure_folder(previous)
    setup.archive.write_file(previous, names["csr"], csr_pem)
    setup.archive.write_file(previous, names["key"], key_pem)
    run = lab.start("reused")

    assert setup.archive.location(previous) in run.wait_paused(Question.CSR_REUSE)
    run.resume(choice="Reuse the previous CSR and key", answered_by="anna")
    run.wait_paused(Question.CA_CHOICE)
    assert tracker.find_tickets(f"{rid}-csr") == []
    [owner] = tracker.find_tickets(f"{rid}-owner")
    assert any(setup.archive.location(previous) in c for c in tracker.comments(owner.key))
    run.resume(ca="CESICAT", answered_by="Anna (support)")

    # The request form says where the CSR really is: the archive, not the owner's ticket.
    description = run.wait_paused(Question.CA_REQUEST)
    what_to_do = description.split("**What to do now**")[1].split("**After you submit**")[0]
    assert setup.archive.location(previous) in what_to_do
    assert owner.key not in what_to_do
    assert csr_pem.decode().strip().splitlines()[1] in description
    run.resume(request_number="REQ000778", requested_by="Anna (support)")

    # The certificate arrives on the owner's ticket, the only one there is.
    assert owner.key in run.wait_paused(pause_key(Question.CERTIFICATE, 1))
    crt = lab.ca.sign_csr(csr_pem, days=180)
    tracker.add_attachment(owner.key, names["crt"], crt)
    run.resume(answered_by="anna")
    run.wait_paused(pause_key(Question.INSTALL, 1))
    lab.install(server, crt, key_pem)
    run.resume(action="Check the endpoints again", confirmed_by="anna")
    run.wait_paused(Question.RETIRE)
    run.resume(outcome="Revoked at the CA", confirmed_by="Anna (support)")
    final = run.wait_final()
    assert final.is_completed()

    result = final.result()
    assert result["tickets"]["csr"] is None and result["tickets"]["owner"] == owner.key
    [install] = tracker.find_tickets(f"{rid}-install")
    assert {link.other_key for link in tracker.links(install.key)} == {owner.key}
    owner_comments = "\n".join(tracker.comments(owner.key))
    for step in ("csr-reused", "ca-requested", "certificate-received", "archived", "retired"):
        assert f"[certrenew:{step}]" in owner_comments, step
    folder = renewal_folder(setup.root_folder, "CESICAT", datetime.now(UTC).year, domain)
    assert setup.archive.read_file(folder, names["key"]) == key_pem
    manifest = json.loads(setup.archive.read_file(folder, "manifest.json"))
    assert manifest["tickets"] == {"service_owner": owner.key}


def test_urgency_refused_goes_the_normal_way_and_retiring_without_revocation_sends_no_notice(
    renewal_lab: RenewalLab,
) -> None:
    """The flow reads the two decisions people make: urgent approval and how to retire."""
    lab = renewal_lab
    _domain, _server, rid, people = lab.serve_renewal("refused-urgent")
    tracker = lab.tracker()
    run = lab.start("refused-urgent", urgent=True)
    run.answer_each(people, rid, pause_key(Question.CSR, 1), Question.CA_CHOICE)

    assert "manager" in run.wait_paused(Question.URGENT_APPROVAL)
    run.resume(approved_by="Marta (manager)", approved=False)
    description = run.wait_paused(Question.CA_REQUEST)
    assert "Urgent channel" not in description
    [csr_ticket] = tracker.find_tickets(f"{rid}-csr")
    decision = [c for c in tracker.comments(csr_ticket.key) if "[certrenew:urgent-decision]" in c]
    assert len(decision) == 1 and "no aprovada" in decision[0] and "Marta" in decision[0]
    run.resume(**people.answer(Question.CA_REQUEST, rid))
    run.answer_each(people, rid, pause_key(Question.CERTIFICATE, 1), pause_key(Question.INSTALL, 1))

    run.wait_paused(Question.RETIRE)
    run.resume(outcome="Retired without revocation", confirmed_by="Anna (support)")
    final = run.wait_final()
    assert final.is_completed()
    result = final.result()
    assert result["urgent"] is False and result["revoked"] is False and result["retired"]
    assert not (lab.settings.outbox_path() / f"{rid}-revoked.eml").exists()
    for ticket in tracker.find_tickets(rid):
        assert tracker.get_ticket(ticket.key).status == "Done"
        closing = [c for c in tracker.comments(ticket.key) if "[certrenew:retired]" in c]
        assert len(closing) == 1 and "retirat sense revocar" in closing[0], ticket.key


def test_an_approved_urgent_request_is_marked_for_the_ca_and_recorded(
    renewal_lab: RenewalLab,
) -> None:
    lab = renewal_lab
    _domain, _server, rid, people = lab.serve_renewal("approved-urgent")
    run = lab.start("approved-urgent", urgent=True)
    run.answer_each(people, rid, pause_key(Question.CSR, 1), Question.CA_CHOICE)
    run.wait_paused(Question.URGENT_APPROVAL)
    run.resume(approved_by="Marta (manager)", approved=True)
    assert "Urgent channel**, approved by Marta (manager)" in run.wait_paused(Question.CA_REQUEST)
    [csr_ticket] = lab.tracker().find_tickets(f"{rid}-csr")
    decision = [c for c in lab.tracker().comments(csr_ticket.key) if "urgent-decision" in c]
    assert len(decision) == 1 and "aprovada per Marta" in decision[0]


def test_only_people_in_the_role_answer_and_a_refusal_is_said_on_the_ticket(
    renewal_lab: RenewalLab, tmp_path
) -> None:
    lab = renewal_lab
    config = example_config(
        tmp_path / "roles.toml",
        inventory=str(lab.inventory),
        data_dir=str(lab.settings.data_dir),
        renewal=DEMO_TIMINGS,
        roles={"certificate_managers": ["anna"], "workflow_managers": ["marta"]},
    )
    _domain, _server, rid, people = lab.serve_renewal("roles")
    tracker = lab.tracker()
    run = lab.start("roles", urgent=True, config=str(config))

    run.wait_paused("csr-1")
    run.resume(**(people.answer("csr-1", rid) | {"answered_by": "anna"}))
    run.wait_paused(Question.CA_CHOICE)
    run.resume(ca="CESICAT", answered_by="mallory")
    description = run.wait_paused(f"{Question.CA_CHOICE}-refused-1")
    assert "'mallory' is not one of the certificate managers (anna)" in description
    [owner] = tracker.find_tickets(f"{rid}-owner")
    refusals = [c for c in tracker.comments(owner.key) if "refused-ca-choice]" in c]
    assert len(refusals) == 1 and "mallory" in refusals[0]
    run.resume(ca="CESICAT", answered_by=" Anna ")

    # Certificate managers may not approve the urgent channel: workflow managers do.
    run.wait_paused(Question.URGENT_APPROVAL)
    run.resume(approved_by="anna", approved=True)
    assert "workflow managers (marta)" in run.wait_paused(f"{Question.URGENT_APPROVAL}-refused-1")
    run.resume(approved_by="marta", approved=True)
    assert "approved by marta" in run.wait_paused(Question.CA_REQUEST)
    chosen = [c for c in tracker.comments(owner.key) if "[certrenew:ca-chosen]" in c]
    assert len(chosen) == 1 and "per Anna" in chosen[0]
