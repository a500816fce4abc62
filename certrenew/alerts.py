"""Alerts from the organisation's monitors, read and matched to inventory certificates.

Two shapes arrive at `certrenew serve`'s intake: Prometheus Alertmanager's
webhook (version 4: `{"version": "4", "status", "alerts": [{"status",
"labels", "annotations", ...}]}`), for instance from an alert on
blackbox_exporter's `probe_ssl_earliest_cert_expiry`, and a plain JSON object
for any other monitor: `{"name" | "domain" | "target", "not_after"?,
"status"?}`. Both become `Alert`s; `match_certificates` finds the inventory
certificates an alert speaks of. Plain functions: no server, no Prefect.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from certrenew.errors import CertRenewError
from certrenew.inventory import CertificateEntry, Inventory
from certrenew.printable import printable

AlertStatus = Literal["firing", "resolved"]

# Alertmanager labels that name a certificate (beside `instance`, the probed target).
NAME_LABELS = ("certificate", "certrenew_name")
DOMAIN_LABELS = ("domain", "server_name")
TARGET_LABELS = ("instance", "target")

_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:/\s\[\]]+))(?::(?P<port>\d+))?$"
)
_DEFAULT_PORTS = {"https": 443, "tls": 443, "tcp": 443}
# What names a certificate is a name, a DNS name or a URL: far shorter than this.
MAX_NAME_CHARS = 512
# Words that only describe an alert (its source, receiver, alert name) go into the
# log and onto the ticket, cut to this and with control characters removed.
MAX_SAID_CHARS = 200


class AlertError(CertRenewError):
    """The request is not an alert certrenew can read; the message says how to fix it."""


@dataclass(frozen=True)
class Alert:
    """One alert: what it names, whether it still fires, and what it says of the expiry."""

    status: AlertStatus
    source: str  # in words, for the log and the ticket: monitor, alert name, target
    name: str | None = None
    domain: str | None = None
    target: str | None = None
    not_after: datetime | None = None

    @property
    def names(self) -> str:
        """What the alert names, as the sender wrote it (for messages)."""
        return self.name or self.domain or self.target or "nothing"


def parse_alerts(body: bytes) -> list[Alert]:
    """The alerts in one request body, or an AlertError saying what is wrong with it."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlertError(f"the body is not JSON ({exc}): send a JSON object") from None
    if not isinstance(data, dict):
        raise AlertError(
            "the body is JSON but not an object: send an Alertmanager webhook or "
            '{"name" | "domain" | "target": ..., "not_after": ...}'
        )
    if "alerts" in data:
        return alertmanager_alerts(data)
    return [generic_alert(data)]


def alertmanager_alerts(data: dict[str, Any]) -> list[Alert]:
    """The alerts of an Alertmanager webhook (payload version 4)."""
    version = str(data.get("version", ""))
    if version != "4":
        raise AlertError(
            f"Alertmanager webhook version {version or '(none)'} is not supported: "
            "version 4 is (Alertmanager 0.x sends it)"
        )
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise AlertError("the webhook's 'alerts' is not a list of alerts")
    receiver = _said(data.get("receiver"), "the webhook's 'receiver'") or "Alertmanager"
    return [_alertmanager_alert(alert, index, receiver) for index, alert in enumerate(alerts)]


def _alertmanager_alert(alert: Any, index: int, receiver: str) -> Alert:
    if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
        raise AlertError(f"alerts[{index}] has no 'labels' object")
    labels: dict[str, Any] = alert["labels"]
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        raise AlertError(f"alerts[{index}].status must be 'firing' or 'resolved', not {status!r}")
    where = f"alerts[{index}].labels"
    name = _first(labels, NAME_LABELS, where)
    domain = _first(labels, DOMAIN_LABELS, where)
    target = _first(labels, TARGET_LABELS, where)
    if not (name or domain or target):
        raise AlertError(
            f"alerts[{index}] names no certificate: give it an 'instance' label (host:port or "
            "URL), or a 'certificate' or 'domain' label"
        )
    not_after = annotations.get("not_after") if annotations else None
    alertname = _said(labels.get("alertname"), f"{where}.alertname") or "alert"
    return Alert(
        status=status,
        source=f"{receiver}: {alertname} on {target or domain or name}",
        name=name,
        domain=domain,
        target=target,
        not_after=parse_not_after(not_after, f"alerts[{index}].annotations.not_after"),
    )


def generic_alert(data: dict[str, Any]) -> Alert:
    """`{"name" | "domain" | "target", "not_after"?, "status"?, "source"?}` from any monitor."""
    known = {"name", "domain", "target", "not_after", "status", "source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise AlertError(
            f"unknown field(s) {', '.join(unknown)}: send name, domain or target, and "
            "optionally not_after, status (firing/resolved) and source"
        )
    fields = {key: _name(data.get(key), f"'{key}'") for key in ("name", "domain", "target")}
    fields["source"] = _said(data.get("source"), "'source'")
    if not (fields["name"] or fields["domain"] or fields["target"]):
        raise AlertError("the alert names no certificate: give 'name', 'domain' or 'target'")
    status = data.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise AlertError(f"'status' must be 'firing' or 'resolved', not {status!r}")
    named = fields["target"] or fields["domain"] or fields["name"]
    return Alert(
        status=status,
        source=f"{fields['source'] or 'monitor'}: alert on {named}",
        name=fields["name"],
        domain=fields["domain"],
        target=fields["target"],
        not_after=parse_not_after(data.get("not_after"), "not_after"),
    )


def parse_not_after(value: Any, field: str) -> datetime | None:
    """An expiry as ISO 8601 or Unix seconds (what `probe_ssl_earliest_cert_expiry` holds)."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise AlertError(
        f"'{field}' is not a date: give ISO 8601 (2026-01-31T12:00:00Z) or Unix seconds"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first(labels: dict[str, Any], keys: tuple[str, ...], where: str) -> str | None:
    for key in keys:
        value = labels.get(key)
        if isinstance(value, str) and value.strip():
            return _name(value, f"{where}.{key}")
    return None


def _name(value: Any, field: str) -> str | None:
    """A value naming a certificate: a string of one plain line, or an AlertError."""
    if value is None:
        return None
    if not (isinstance(value, str) and value.strip()):
        raise AlertError(f"{field} must be a non-empty string")
    text = value.strip()
    if printable(text) != text:
        raise AlertError(
            f"{field} holds control characters: send the certificate's name, domain or "
            "host:port as plain text"
        )
    if len(text) > MAX_NAME_CHARS:
        raise AlertError(
            f"{field} is {len(text)} characters long, more than any name ({MAX_NAME_CHARS}): "
            "send the certificate's name, domain or host:port"
        )
    return text


def _said(value: Any, field: str) -> str | None:
    """Words describing the alert, made safe for the log and the ticket; None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AlertError(f"{field} must be a string")
    text = " ".join(printable(value).split())
    return text if len(text) <= MAX_SAID_CHARS else text[: MAX_SAID_CHARS - 1] + "…"


def host_port(target: str) -> tuple[str, int] | None:
    """(host, port) of `host:port`, `[v6]:port`, `host` or a URL; None when unreadable."""
    text = target.strip()
    if "://" in text:
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        return parts.hostname.lower(), port or _DEFAULT_PORTS.get(parts.scheme.lower(), 443)
    match = _HOST_PORT.match(text)
    if not match:
        return None
    host = (match["v6"] or match["host"]).lower().rstrip(".")
    return host, int(match["port"]) if match["port"] else 443


def match_certificates(alert: Alert, inventory: Inventory) -> list[CertificateEntry]:
    """The inventory certificates the alert speaks of: by name, then domain, then endpoint.

    The most specific field the alert carries decides; a target matches an
    endpoint by host (or SNI name) and port, else a certificate whose domain
    is that host.
    """
    if alert.name:
        found = [e for e in inventory.certificates if e.name == alert.name]
        if found:
            return found
    if alert.domain:
        domain = alert.domain.lower().rstrip(".")
        found = [e for e in inventory.certificates if e.domain == domain]
        if found:
            return found
    if alert.target and (where := host_port(alert.target)):
        host, port = where
        by_endpoint = [
            entry
            for entry in inventory.certificates
            if any(
                endpoint.port == port
                and host in (endpoint.host.lower(), (endpoint.server_name or "").lower())
                for endpoint in entry.endpoints
            )
        ]
        if by_endpoint:
            return by_endpoint
        return [e for e in inventory.certificates if e.domain == host]
    return []
