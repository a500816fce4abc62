"""A whole renewal on the ACME route against a real Pebble: no person before installation.

The certificate in service was issued by the same ACME account in an earlier
renewal (it is in the archive), so step 8 revokes it with the account; Pebble
then reports it revoked. The flow makes the key itself and stores it straight
into the archive: no ticket ever holds it.
"""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certrenew.adapters.ca import CertificateOrder
from certrenew.adapters.ca.acme import AcmeRoute
from certrenew.config import AcmeRouteSettings, load_settings
from certrenew.deployments.demo import DEMO_TIMINGS, EXAMPLES
from certrenew.lab.inventory import inventory_entry, write_inventory
from certrenew.lab.pebble import EAB_HMAC_KEY, EAB_KID, running_pebble, serving_webroot
from certrenew.lab.tls import LeafCertificate, TLSServer
from certrenew.naming import renewal_file_names, renewal_folder
from certrenew.pki.certs import certificate_facts
from certrenew.pki.csr import make_key_and_csr
from certrenew.pki.issued import load_certificates
from certrenew.renewal import renewal_id
from tests.fixtures_renewal import RenewalLab, RenewalRun, example_config

pytestmark = pytest.mark.prefect

CA = "Pebble"


def paused_keys(run: RenewalRun) -> set[str]:
    """Every question the run ever asked (its Paused states)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
    return {s.state_details.pause_key or "" for s in states if s.is_paused()}


def test_acme_renewal_needs_no_person_before_installation_and_revokes_the_old(
    renewal_lab: RenewalLab, tmp_path: Path
) -> None:
    lab = renewal_lab
    name, domain = "acme-e2e", "acme-e2e.test.example.cat"
    (tmp_path / "eab-hmac").write_text(EAB_HMAC_KEY)
    with (
        serving_webroot(tmp_path / "webroot") as http_port,
        running_pebble(tmp_path / "pebble", http_port=http_port, eab_required=True) as pebble,
    ):
        route_section: dict[str, Any] = {
            "kind": "acme",
            "directory_url": pebble.directory_url,
            "account_key_file": str(tmp_path / "account.key"),
            "eab_kid": EAB_KID,
            "eab_hmac_key_file": str(tmp_path / "eab-hmac"),
            "webroot": str(tmp_path / "webroot"),
            "ca_bundle": str(pebble.ca_bundle),
            "key": "generate",
        }
        example = tomllib.loads((EXAMPLES / "certrenew.toml").read_text(encoding="utf-8"))
        config = example_config(
            tmp_path / "certrenew.toml",
            inventory=str(lab.inventory),
            data_dir=str(lab.settings.data_dir),
            # Pebble 2.4 issues five-year certificates; the cap is configuration.
            renewal={**DEMO_TIMINGS, "cas": [*example["renewal"]["cas"], CA],
                     "max_lifetime_days": 1900},
            ca_routes={CA: route_section},
        )  # fmt: skip
        settings = load_settings(config)
        route = AcmeRoute(AcmeRouteSettings.model_validate(route_section))
        assert settings.csr

        # An earlier renewal through the same account: issued, archived, in service.
        key_pem, csr_pem = make_key_and_csr(settings.csr.rules(), (domain,))
        old_pem = route.collect(
            route.request(CertificateOrder(domain, (domain,), csr_pem.decode(), "earlier"))
        )
        old_serial = certificate_facts(load_certificates(old_pem, "old")[0]).serial
        archive = lab.archive()
        earlier = renewal_folder(archive.root_folder, CA, datetime.now(UTC).year, domain)
        archive.archive.ensure_folder(earlier)
        archive.archive.write_file(earlier, renewal_file_names(domain)["crt"], old_pem)
        server = TLSServer(LeafCertificate.from_pem(old_pem, key_pem)).start()
        lab.servers.append(server)
        lab.entries.append(inventory_entry(name, domain, server.address, ca=CA))
        write_inventory(lab.inventory, lab.entries)

        # Five years left: only a forced renewal replaces it.
        run = lab.start(name, config=str(config), force=True)
        rid = renewal_id(domain, old_serial)
        tracker = lab.tracker()
        deadline = time.monotonic() + 240
        while not tracker.find_tickets(f"{rid}-install"):
            assert not run.state().is_final(), f"run ended {run.state()}"
            assert time.monotonic() < deadline, "the install ticket never opened"
            time.sleep(0.5)
        # The only question a person may have been asked yet is whether it is installed.
        assert paused_keys(run) <= {"install-1"}, "a person was asked before installation"

        # The systems team installs what the archive holds (the key went nowhere else).
        folder = earlier  # the same year: the earlier .crt is kept as .old-1.crt
        names = renewal_file_names(domain)
        files = {f.name for f in archive.archive.list_files(folder)}
        assert {names["key"], names["crt"], names["chain"], "manifest.json"} <= files
        new_pem = archive.archive.read_file(folder, names["crt"])
        chain = archive.archive.read_file(folder, names["chain"])
        new_key = archive.archive.read_file(folder, names["key"])
        server.install(LeafCertificate.from_pem(new_pem + chain, new_key))

        deadline = time.monotonic() + 240
        while not run.state().is_final():
            if run.state().is_paused() and run.state().state_details.pause_key == "install-1":
                run.resume(action="Check the endpoints again", confirmed_by="suport.tecnic")
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.5)
        assert run.state().is_completed()
        assert paused_keys(run) <= {"install-1"}
        assert pebble.revoked(old_serial)

        # No CSR ticket; no ticket ever held the key; the tickets tell the story.
        assert not tracker.find_tickets(f"{rid}-csr")
        [owner] = tracker.find_tickets(f"{rid}-owner")
        assert not tracker.attachments(owner.key)
        story = "\n".join(tracker.comments(owner.key))
        assert "ACME" in story and str(old_serial) in story
        assert "-----BEGIN" not in story
