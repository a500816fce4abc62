"""The whole renewal runbook with Jira as the tracker and SharePoint as the archive.

The flow runs in the served deployment with a configuration file that points
at the Jira test server and the local SharePoint/authority, exactly as a team
going live would point it at theirs. Outages of either system make the run
wait for a person and lose nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from certrenew.adapters.wiring import build_tracker
from certrenew.config import load_settings
from certrenew.deployments.demo import DEMO_TIMINGS
from certrenew.lab.jira_server import JiraServer
from certrenew.lab.mail import MailServer, WebhookReceiver
from certrenew.lab.people import DemoPeople
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import Question, pause_key
from tests.fixtures_jira import FAST_RETRIES
from tests.fixtures_renewal import RenewalLab, example_config, served_serial
from tests.fixtures_sharepoint import LIBRARY, SharePointTestbed
from tests.secret_sweep import files_under, found, prefect_database, texts
from tests.test_history import check_renewal_story, history

pytestmark = pytest.mark.prefect


@pytest.fixture
def relay() -> Iterator[MailServer]:
    with MailServer(None, "none", "certrenew", SMTP_PASSWORD) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(WEBHOOK_TOKEN) as server:
        yield server


# Secrets the configuration below reads from files (as an operator keeps them).
SMTP_PASSWORD = "smtp-pw-" + "Qx7#relay"
WEBHOOK_TOKEN = "hook-" + "t0k3n-2b9f61"
KEY_PASSPHRASE = "archive-pass-" + "7Vd!kq"


def secret_file(folder: Path, name: str, value: str) -> str:
    path = folder / name
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def live_config(
    lab: RenewalLab,
    path: Path,
    jira: JiraServer,
    sharepoint: SharePointTestbed,
    owner: str,
    notices: dict[str, object] | None = None,
    **jira_settings: Any,
) -> Path:
    """The lab's configuration pointed at Jira and SharePoint; every secret in a file."""
    token_file = secret_file(path.parent, "jira-token", jira.token or "")
    jira.users.add(owner)
    sharepoint_settings = sharepoint.settings(
        retry_max_delay_seconds=0.05,
        key_passphrase_file=secret_file(path.parent, "key-passphrase", KEY_PASSPHRASE),
    )
    return example_config(
        path,
        inventory=str(lab.inventory),
        data_dir=str(lab.settings.data_dir),
        renewal=DEMO_TIMINGS,
        tracker="jira",
        archive="sharepoint",
        jira={"url": jira.url, "token_file": token_file, **FAST_RETRIES, **jira_settings},
        sharepoint={
            key: str(value) if isinstance(value, Path) else value
            for key, value in sharepoint_settings.model_dump(exclude_none=True).items()
        },
        **({"notices": notices} if notices else {}),
    )


def notice_channels(
    folder: Path, relay: MailServer, receiver: WebhookReceiver
) -> dict[str, object]:
    """Email through a relay that wants a login, and a webhook that wants a token."""
    return {
        "recipients": ["certificats@example.cat"],
        "smtp": {
            "host": "127.0.0.1",
            "port": relay.port,
            "security": "none",
            "sender": "certrenew@example.cat",
            "user": "certrenew",
            "password_file": secret_file(folder, "smtp-password", SMTP_PASSWORD),
        },
        "webhook": {
            "url": receiver.url,
            "token_file": secret_file(folder, "webhook-token", WEBHOOK_TOKEN),
        },
    }


@pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
def test_runbook_on_jira_and_sharepoint_waits_through_outages(
    renewal_lab: RenewalLab,
    jira_server: JiraServer,
    sharepoint: SharePointTestbed,
    tmp_path: Path,
    relay: MailServer,
    receiver: WebhookReceiver,
) -> None:
    lab = renewal_lab
    name = f"live-{jira_server.deployment.lower()}"
    domain, server = lab.serve_certificate(name)
    rid = renewal_id(domain, served_serial(lab, name))
    config = live_config(
        lab,
        tmp_path / "certrenew.toml",
        jira_server,
        sharepoint,
        f"{name}-owner",
        notice_channels(tmp_path, relay, receiver),
    )
    settings = load_settings(config)
    people = DemoPeople(settings, lab.ca, server, domain, lambda _: None)
    run = lab.start(name, config=str(config))

    run.wait_paused("csr-1")
    [csr_ticket] = jira_server.issues_labelled(f"{rid}-csr")
    [owner_ticket] = jira_server.issues_labelled(f"{rid}-owner")
    assert csr_ticket.key.startswith("SIS-") and owner_ticket.key.startswith("ST-")

    # Jira goes down while the systems team works: the step waits for a person.
    answer = people.answer("csr-1", rid)
    jira_server.fail(503, times=None)
    run.resume(**answer)
    assert "could not finish" in run.wait_paused(
        pause_key(Question.WAIT, "collect-csr-and-key", 2, 1)  # attempt 2, first failure
    )
    jira_server.faults.clear()
    run.resume(action="Check again", answered_by="anna")

    for key in ("ca-choice", "ca-request", "certificate-1"):
        run.wait_paused(key)
        answer = people.answer(key, rid)
        if key == "certificate-1":
            sharepoint.site.outage(retry_after=None)  # SharePoint is down when archiving
        run.resume(**answer)
    assert "could not finish" in run.wait_paused(pause_key(Question.WAIT, "archive-artifacts", 1))
    sharepoint.site.end_outage()
    run.resume(action="Check again", answered_by="anna")
    run.answer_each(people, rid, "install-1", "retire")
    assert run.wait_final().is_completed()

    # One ticket each, linked, closed; the key left Jira for SharePoint.
    for kind in ("csr", "owner", "install"):
        assert len(jira_server.issues_labelled(f"{rid}-{kind}")) == 1, kind
    [install] = jira_server.issues_labelled(f"{rid}-install")
    tracker = build_tracker(settings)
    assert {link.other_key for link in tracker.links(install.key)} == {
        csr_ticket.key,
        owner_ticket.key,
    }
    for key in (csr_ticket.key, owner_ticket.key, install.key):
        assert tracker.get_ticket(key).status == "Done"
    assert not [a for a in tracker.attachments(csr_ticket.key) if a.filename.endswith(".key")]
    folder = f"{LIBRARY}/CERTIFICATS/CDS/CESICAT/{datetime.now(UTC).year}/{domain}"
    # The archived key is encrypted with the configured passphrase.
    archived_key = sharepoint.site.file(f"{folder}/{domain}.key")
    assert b"ENCRYPTED" in archived_key and archived_key != people.generated["key"]
    assert (
        serialization.load_pem_private_key(archived_key, KEY_PASSPHRASE.encode()).public_key()
        == serialization.load_pem_private_key(people.generated["key"], None).public_key()
    )
    assert sharepoint.site.file(f"{folder}/{domain}.crt") == people.generated["crt"]
    assert b"PRIVATE KEY" not in sharepoint.site.file(f"{folder}/manifest.json")

    # The revocation notice went by mail (with the relay's login) and to the webhook.
    assert [m.message["X-Certrenew-Notice"] for m in relay.arrived] == [f"{rid}-revoked"]
    assert [body["notice"] for body in receiver.arrived] == [f"{rid}-revoked"]

    # `certrenew history` tells the renewal from Jira (its changelog) and the runs.
    code, out = history(config, name, "--json")
    assert code == 0, out
    [renewal] = json.loads(out)["renewals"]
    tickets = {"csr": csr_ticket.key, "owner": owner_ticket.key, "install": install.key}
    support = people.answer(Question.CA_REQUEST, rid)["requested_by"]
    asked = (Question.CA_CHOICE, Question.CA_REQUEST, Question.RETIRE)
    check_renewal_story(renewal, domain, tickets, dict.fromkeys(asked, support))
    # Each outage is on the timeline with the reason the run gave people.
    waits = {e["step"]: e["what"] for e in renewal["events"] if e["kind"] == "waiting"}
    assert jira_server.url in waits[pause_key(Question.WAIT, "collect-csr-and-key", 2, 1)]
    assert (
        str(settings.sharepoint.site_url) in waits[pause_key(Question.WAIT, "archive-artifacts", 1)]
    )
    # No secret anywhere the renewal left text: the Prefect database (runs, parameters,
    # form input, logs, artifacts, events), step results, the serving process's console,
    # what Jira was sent, the notices (outbox, mail, webhook), the manifest, the history.
    # The systems team's upload of the key to the CSR ticket is theirs (the runbook's step 1).
    sent_to_jira = [e for e in jira_server.exchanges if not e.path.endswith("/attachments")]
    secrets: dict[str, str | bytes] = {
        "renewal's private key": people.generated["key"],
        "Jira token": jira_server.token or "",
        "SharePoint app key": sharepoint.credential.key_pem,
        "SMTP password": SMTP_PASSWORD,
        "webhook token": WEBHOOK_TOKEN,
        "key passphrase": KEY_PASSPHRASE,
    }
    assert all(secrets.values())
    places: dict[str, bytes | str] = {
        **prefect_database(),
        **files_under(lab.home / "storage", lab.home / "serve.log", settings.data_dir),
        **texts("Jira request", (e.request_body.decode("utf-8", "replace") for e in sent_to_jira)),
        **texts("mail", (m.message.as_string() for m in relay.arrived)),
        **texts("webhook", (json.dumps(body) for body in receiver.arrived)),
        **texts("log", run.logs()),
        "manifest": sharepoint.site.file(f"{folder}/manifest.json"),
        "history": out,
    }
    assert found(secrets, places) == []
