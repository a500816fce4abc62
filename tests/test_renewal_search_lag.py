"""A whole renewal against a Jira whose search lags and whose first creates lose their answer.

Jira's index lags 3 s behind its writes here (20 s and more happen; the bound,
jira.search_lag_seconds, is scaled down with it to 5 s), and the answers to the
first two creates, the SIS and the ST ticket, are lost. The renewal must end
with exactly one ticket of each kind, and the scripted people, who find tickets
by search as people do, must find them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from certrenew.config import load_settings
from certrenew.lab.jira_server import JiraServer
from certrenew.lab.people import DemoPeople
from certrenew.renewal import renewal_id
from tests.fixtures_renewal import RenewalLab, served_serial
from tests.fixtures_sharepoint import SharePointTestbed
from tests.test_renewal_integrations import live_config

pytestmark = pytest.mark.prefect


def test_renewal_opens_each_ticket_once_while_jira_search_lags(
    renewal_lab: RenewalLab, jira_server: JiraServer, sharepoint: SharePointTestbed, tmp_path: Path
) -> None:
    lab = renewal_lab
    domain, server = lab.serve_certificate("lagging-jira")
    rid = renewal_id(domain, served_serial(lab, "lagging-jira"))
    config = live_config(
        lab,
        tmp_path / "certrenew.toml",
        jira_server,
        sharepoint,
        "lagging-jira-owner",
        search_lag_seconds=5,
        timeout_seconds=2,
    )
    jira_server.search_lag_seconds = 3
    jira_server.lose_response(r"/issue$", "POST", times=2)
    people = DemoPeople(load_settings(config), lab.ca, server, domain, lambda _: None)
    run = lab.start("lagging-jira", config=str(config))
    run.answer_each(people, rid, "csr-1", "ca-choice", "ca-request", "certificate-1")
    run.answer_each(people, rid, "install-1", "retire")
    assert run.wait_final().is_completed()

    for kind in ("csr", "owner", "install"):
        assert len(jira_server.issues_labelled(f"{rid}-{kind}")) == 1, kind
    lost = [e for e in jira_server.calls("POST", r"/issue$") if e.fault == "lose_response"]
    assert len(lost) == 2
    assert len(jira_server.calls("POST", r"/issue$")) == 3
