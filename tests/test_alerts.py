"""Reading monitors' alerts and finding the certificates they speak of (no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from certrenew.alerts import AlertError, host_port, match_certificates, parse_alerts
from certrenew.inventory import parse_inventory

INVENTORY = parse_inventory(
    """
certificates:
  - name: seu
    domain: seu.example.cat
    endpoints: ["10.0.0.5:443", {host: lb.example.cat, port: 8443, server_name: seu.example.cat}]
  - name: api
    domain: api.example.cat
    endpoints: ["api.example.cat:443"]
  - name: v6
    domain: v6.example.cat
    endpoints: ["[2001:db8::1]:443"]
"""
)


def webhook(*alerts: dict[str, Any], version: str = "4") -> bytes:
    """An Alertmanager webhook as Alertmanager sends it (fields per its documentation)."""
    return json.dumps(
        {
            "version": version,
            "groupKey": '{}:{alertname="CertificateExpiringSoon"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "certrenew",
            "groupLabels": {"alertname": "CertificateExpiringSoon"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts),
        }
    ).encode()


def blackbox_alert(instance: str, status: str = "firing", **annotations: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "CertificateExpiringSoon", "instance": instance, "job": "tls"},
        "annotations": annotations,
        "startsAt": "2026-12-01T07:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "c0ffee",
    }


def names(body: bytes) -> list[list[str]]:
    return [[e.name for e in match_certificates(a, INVENTORY)] for a in parse_alerts(body)]


def test_blackbox_instances_as_url_or_host_port_find_their_certificates() -> None:
    body = webhook(
        blackbox_alert("https://api.example.cat"),
        blackbox_alert("seu.example.cat:8443"),  # the SNI name and port of the balancer
        blackbox_alert("10.0.0.5:443"),
        blackbox_alert("https://[2001:db8::1]/health"),
        blackbox_alert("lb.example.cat:8443", status="resolved"),
    )
    assert names(body) == [["api"], ["seu"], ["seu"], ["v6"], ["seu"]]
    alerts = parse_alerts(body)
    assert [a.status for a in alerts] == ["firing"] * 4 + ["resolved"]
    assert alerts[0].source == "certrenew: CertificateExpiringSoon on https://api.example.cat"


def test_a_target_matches_by_domain_when_no_endpoint_is_listed_that_way() -> None:
    # api.example.cat:443 is an endpoint; seu.example.cat:443 is not, but it is seu's domain.
    assert names(webhook(blackbox_alert("seu.example.cat:443"))) == [["seu"]]
    assert names(webhook(blackbox_alert("other.example.cat:443"))) == [[]]


def test_the_expiry_comes_from_an_annotation_in_unix_seconds_or_iso() -> None:
    [alert] = parse_alerts(webhook(blackbox_alert("api.example.cat:443", not_after="1798761600")))
    assert alert.not_after == datetime(2027, 1, 1, tzinfo=UTC)
    [alert] = parse_alerts(
        json.dumps({"domain": "API.example.cat.", "not_after": "2027-01-01T00:00:00Z"}).encode()
    )
    assert alert.not_after == datetime(2027, 1, 1, tzinfo=UTC)
    assert [e.name for e in match_certificates(alert, INVENTORY)] == ["api"]


def test_generic_alerts_by_name_domain_or_target() -> None:
    assert names(b'{"name": "v6"}') == [["v6"]]
    assert names(b'{"domain": "seu.example.cat", "status": "resolved"}') == [["seu"]]
    assert names(b'{"target": "[2001:db8::1]:443", "source": "nagios"}') == [["v6"]]
    assert names(b'{"name": "nobody"}') == [[]]
    [alert] = parse_alerts(b'{"target": "api.example.cat:443", "source": "zabbix"}')
    assert alert.source == "zabbix: alert on api.example.cat:443"
    assert alert.status == "firing"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b"{}", "names no certificate"),
        (b'{"name": ""}', "non-empty string"),
        (b'{"name": "seu", "expires": 1}', "unknown field(s) expires"),
        (b'{"name": "seu", "not_after": "soon"}', "'not_after' is not a date"),
        (b'{"name": "seu", "status": "pending"}', "'firing' or 'resolved'"),
        (webhook(blackbox_alert("x:1"), version="3"), "version 3 is not supported"),
        (webhook(), "not a list of alerts"),
        (webhook({"status": "firing"}), "alerts[0] has no 'labels'"),
        (webhook({"status": "firing", "labels": {"job": "tls"}}), "alerts[0] names no certificate"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: bytes, says: str) -> None:
    with pytest.raises(AlertError, match=None) as raised:
        parse_alerts(body)
    assert says in str(raised.value)


def test_host_port_reads_every_shape_a_monitor_uses() -> None:
    assert host_port("https://Seu.Example.cat:8443/x?y") == ("seu.example.cat", 8443)
    assert host_port("tcp://seu.example.cat") == ("seu.example.cat", 443)
    assert host_port("seu.example.cat") == ("seu.example.cat", 443)
    assert host_port("[::1]:9443") == ("::1", 9443)
    assert host_port("https://seu.example.cat:99999") is None
    assert host_port("not a target") is None
