"""Inventory errors name the file, the line, the entry and the field, and say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrenew.errors import InventoryError
from certrenew.inventory import load_inventory, parse_inventory, targets

GOOD = """\
defaults: {warn_days: 30, critical_days: 7}
certificates:
  - name: seu.example.cat
    domain: SEU.example.cat.
    endpoints:
      - {host: 127.0.0.1, port: 8443, server_name: seu.example.cat}
      - "seu.example.cat:443"
      - "[::1]:9443"
      - "seu.example.cat"
  - name: segell
    domain: segell.example.cat
    warn_days: 45
    files:
      - {path: certs/seal.p12, password_env: SEAL_P12_PASSWORD}
"""


def test_a_good_inventory_yields_every_target_with_its_names(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(GOOD, encoding="utf-8")
    inventory = load_inventory(path)
    seu, segell = inventory.certificates
    assert seu.domain == "seu.example.cat"
    assert [t.label for t in targets(inventory)] == [
        "127.0.0.1:8443",
        "seu.example.cat:443",
        "[::1]:9443",
        "seu.example.cat:443",
        str(tmp_path / "certs/seal.p12"),
    ]
    assert seu.server_name(seu.endpoints[1]) == "seu.example.cat"
    assert segell.thresholds(inventory.defaults).warn_days == 45
    assert segell.thresholds(inventory.defaults).critical_days == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "certificates:\n  - name: a\n    domain: a.test\n    endpoints:\n"
            "      - {host: h, port: 99999}\n",
            "inv.yaml:5: certificates[0] (a).endpoints[0].port: Input should be less than",
        ),
        (
            "certificates:\n  - name: a\n    domain: a.test\n    endpoints:\n      - 'h:xx'\n",
            "inv.yaml:5: certificates[0] (a).endpoints[0]: 'h:xx' is not host:port",
        ),
        (
            "certificates:\n  - {name: a, domain: a.test, endpoints: ['h:1']}\n"
            "  - {name: a, domain: b.test, endpoints: ['h:1']}\n",
            "inv.yaml:3: certificates[1] (a): name is already used at line 2",
        ),
        (
            "certificates:\n  - name: a\n    endpoints: ['h:1']\n",
            "inv.yaml:2: certificates[0] (a).domain: Field required",
        ),
        (
            "certificates:\n  - name: a\n    domain: a.test\n",
            "inv.yaml:2: certificates[0] (a): give at least one endpoint or file",
        ),
        (
            "certificates:\n  - name: a\n    domain: a.test\n    endpoints: ['h:1']\n"
            "    colour: red\n",
            "inv.yaml:5: certificates[0] (a).colour: Extra inputs are not permitted",
        ),
        (
            "certificates:\n  - name: a\n    domain: 'not a domain'\n    endpoints: ['h:1']\n",
            "inv.yaml:3: certificates[0] (a).domain: 'not a domain' is not a DNS name",
        ),
        (
            "certificates:\n  - name: a\n    domain: [a.test\n",
            "inv.yaml:4: not valid YAML",
        ),
        (
            "defaults: {warn_days: 5, critical_days: 10}\ncertificates: []\n",
            "inv.yaml:1: defaults: critical_days must not be larger than warn_days",
        ),
        (
            "certificates:\n  - {name: a, domain: a.test, endpoints: ['h:1']}\n"
            "  - {name: b, domain: b.test, endpoints: ['h:1'], warn_days: 5}\n",
            "inv.yaml:3: certificates[1] (b): critical_days is larger than warn_days once the "
            "defaults",
        ),
        ("- a\n- b\n", "inv.yaml:1: the inventory must be a mapping with 'certificates'"),
    ],
)
def test_errors_point_at_file_line_entry_and_field(text: str, expected: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_password_in_the_inventory_is_refused_without_repeating_it() -> None:
    text = (
        "certificates:\n  - name: a\n    domain: a.test\n    files:\n"
        "      - {path: seal.p12, password: hunter2-secret}\n"
    )
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yaml")
    message = str(caught.value)
    assert message.startswith("inv.yaml:5: certificates[0] (a).files[0]: a password is never")
    assert "password_env" in message
    assert "hunter2-secret" not in message


def test_a_missing_inventory_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist: pass --inventory"):
        load_inventory(tmp_path / "missing.yaml")


def test_the_lab_writes_an_empty_inventory_that_loads(tmp_path: Path) -> None:
    """An inventory with no certificates yet is a list, not YAML's null."""
    from certrenew.lab.inventory import write_inventory

    path = tmp_path / "inventory.yaml"
    write_inventory(path, [])
    assert load_inventory(path).certificates == []
