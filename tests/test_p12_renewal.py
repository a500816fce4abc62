"""A whole renewal on the EACAT .p12 route, people answering through the API.

The urgent approval comes before the note to the CA; the .p12 is given by its
path on the flow's machine, first with a wrong password; it lands in the
archive under SEGELL, its password in a KeePass database and nowhere else:
not in Prefect's database, results or logs, nor in tickets, artifacts,
notices or other archived files.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pykeepass import PyKeePass

from certrenew.deployments.demo import DEMO_TIMINGS
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.tls import TLSServer
from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.renewal import renewal_id
from certrenew.tasks.forms import Question, pause_key
from tests.fixtures_renewal import RenewalLab, example_config, served_serial

pytestmark = pytest.mark.prefect

PASSWORD = "Vq9-seal-p12-Pw"
WRONG = "Zr4-not-the-seal-Pw"
MASTER = "keepass-master-Pw"


def prefect_database_rows() -> str:
    """Every value of every table of the Prefect server's database, as text."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    assert url and url.startswith("sqlite"), url
    database = sqlite3.connect(url.split(":///", 1)[1])
    tables = [r[0] for r in database.execute("select name from sqlite_master where type='table'")]
    values = [
        str(value)
        for table in tables
        for row in database.execute(f'select * from "{table}"')
        for value in row
    ]
    database.close()
    return "\n".join(values)


def files_holding(folder: Path, secret: str, skip: set[str]) -> list[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix not in skip and secret.encode() in path.read_bytes()
    ]


def test_p12_renewal_archives_under_segell_and_keeps_the_password_only_in_keepass(
    renewal_lab: RenewalLab, tmp_path: Path
) -> None:
    lab = renewal_lab
    name, domain = "seal-p12", "seal-p12.test.example.cat"
    (tmp_path / "master").write_text(MASTER)
    keepass = tmp_path / "team.kdbx"
    config = example_config(
        tmp_path / "certrenew.toml",
        inventory=str(lab.inventory),
        data_dir=str(lab.settings.data_dir),
        renewal=DEMO_TIMINGS,
        password_safe={"path": str(keepass), "master_password_file": str(tmp_path / "master")},
    )
    server = TLSServer(lab.ca.issue(domain, days=5, key_type="rsa")).start()
    lab.servers.append(server)
    entry = inventory_entry(name, domain, server.address, ca="EACAT")
    lab.entries.append(entry + "    certificate_kind: seal\n")
    write_inventory(lab.inventory, lab.entries)
    old_serial = served_serial(lab, name)
    rid = renewal_id(domain, old_serial)

    run = lab.start(name, config=str(config), urgent=True)
    # No CSR ticket and no CA question: the inventory's CA makes the key.
    assert "urgent" in run.wait_paused(Question.URGENT_APPROVAL).lower()
    run.resume(approved_by="marta", approved=True)
    description = run.wait_paused(Question.CA_REQUEST)
    assert "Urgent channel**, approved by marta" in description
    assert "EACAT subscriber portal" in description and "No CSR" in description
    run.resume(request_number="EACAT-4711", requested_by="anna")

    # The CA issued; support staff downloaded the .p12 to this machine.
    issued = lab.ca.issue(domain, days=365, key_type="rsa")
    p12 = tmp_path / "downloads" / "seal.p12"
    p12.parent.mkdir()
    p12.write_bytes(issued.pkcs12(PASSWORD))
    assert "no .p12" in run.wait_paused(pause_key(Question.P12, 1))
    run.resume(p12_path=str(p12), p12_password=WRONG, answered_by="anna")
    assert "password does not open" in run.wait_paused(pause_key(Question.P12, 2))
    run.resume(p12_path=str(p12), p12_password=PASSWORD, answered_by="anna")

    # The systems team installs it; support staff confirm the retirement.
    description = run.wait_paused(pause_key(Question.INSTALL, 1))
    server.install(issued)
    run.resume(action="Check the endpoints again", confirmed_by="anna")
    run.wait_paused(Question.RETIRE)
    run.resume(outcome="Revoked at the CA", confirmed_by="anna")
    assert run.wait_final().is_completed()

    # Archived under SEGELL by kind; the password in KeePass with notes pointing there.
    archive = lab.archive()
    folder = renewal_folder("CERTIFICATS/SEGELL", "EACAT", datetime.now(UTC).year, domain)
    names = renewal_file_names(domain)
    assert archive.archive.read_file(folder, names["p12"]) == p12.read_bytes()
    assert {names["crt"], "manifest.json"} <= {f.name for f in archive.archive.list_files(folder)}
    database = PyKeePass(str(keepass), password=MASTER)
    [safe_entry] = database.find_entries(title=f"{domain} (seal, EACAT)", group=None) or [None]
    assert safe_entry is not None and safe_entry.password == PASSWORD
    assert archive.archive.location(folder) in safe_entry.notes

    # The tickets say where the file and the password are, and which inventory line to change.
    tracker = lab.tracker()
    assert not tracker.find_tickets(f"{rid}-csr")
    [owner] = tracker.find_tickets(f"{rid}-owner")
    story = "\n".join(tracker.comments(owner.key))
    assert "KeePass team.kdbx" in story and archive.archive.location(folder) in story

    # The sweep: neither password anywhere but in KeePass and inside the .p12 itself.
    for secret in (PASSWORD, WRONG):
        assert secret not in prefect_database_rows()
        assert secret not in "\n".join(run.logs())
        for ticket in tracker.find_tickets("certrenew"):
            assert secret not in ticket.summary
            assert all(secret not in c for c in tracker.comments(ticket.key))
        for place in (lab.home, lab.settings.data_dir):
            assert not files_holding(place, secret, {".kdbx", ".p12"}), place
