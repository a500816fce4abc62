"""Inventories for certificates the lab serves on loopback (demo, tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path


def inventory_entry(
    name: str, domain: str, address: str, owner: str = "demo-owner", ca: str = "CESICAT"
) -> str:
    """One inventory entry (YAML) for a certificate served at `address` (host:port)."""
    host, port = address.rsplit(":", 1)
    return (
        f"  - name: {name}\n"
        f"    domain: {domain}\n"
        f"    owner: {owner}\n"
        f"    ca: {ca}\n"
        f'    endpoints: [{{host: "{host.strip("[]")}", port: {port}, server_name: {domain}}}]\n'
    )


def write_inventory(path: Path, entries: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "defaults: {warn_days: 30, critical_days: 7}\n"
        + ("certificates:\n" + "".join(entries) if entries else "certificates: []\n"),
        encoding="utf-8",
    )
