"""The detection run delivers its reminders by SMTP; a relay that is down is reported in the
run's result, and the next run delivers what it kept pending, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrenew.lab.mail import MailServer
from certrenew.lab.tls import LocalCA, TLSServer
from tests.fixtures_renewal import example_config

pytestmark = pytest.mark.prefect


def test_a_reminder_the_relay_refused_is_reported_and_sent_by_the_next_run(
    prefect_harness: None, lab_ca: LocalCA, tmp_path: Path
) -> None:
    from certrenew.flows.detect_expiring import detect_expiring_certificates

    relay = MailServer(None, "none").start()
    with TLSServer(lab_ca.issue("remind.lab.test", days=20.5, key_type="rsa")) as server:
        inventory = tmp_path / "inventory.yaml"
        host, port = server.address.rsplit(":", 1)
        inventory.write_text(
            "certificates:\n"
            "  - name: remind\n"
            "    domain: remind.lab.test\n"
            "    owner_email: owner@lab.test\n"
            f"    endpoints: [{{host: '{host}', port: {port}}}]\n",
            encoding="utf-8",
        )
        config = example_config(
            tmp_path / "certrenew.toml",
            inventory=str(inventory),
            data_dir=str(tmp_path / "data"),
            notices={
                "recipients": ["team@lab.test"],
                "smtp": {"host": "127.0.0.1", "port": relay.port, "security": "none",
                         "sender": "certrenew@lab.test"},
            },
        )  # fmt: skip

        def detect() -> dict[str, object]:
            summary = detect_expiring_certificates(str(inventory), str(config))
            assert isinstance(summary, dict)
            return summary

        try:
            relay.failing = True
            first = detect()
            lines = first["notices_not_delivered"]
            assert isinstance(lines, list)
            [line] = lines
            assert "expiry-remind-" in line and "smtp" in line and "451" in line
            assert not relay.arrived

            relay.failing = False
            assert detect()["notices_not_delivered"] == []
            assert detect()["notices_not_delivered"] == []  # nothing left, nothing sent twice
        finally:
            relay.stop()

    [mail] = relay.arrived
    assert mail.rcpt_tos == ("team@lab.test", "owner@lab.test")
    assert mail.message["Subject"] == "Avís de caducitat: remind"
    body = mail.message.get_content()
    assert "queden 20 dies" in body and "Renovació: no s'ha començat." in body
