"""Inventory errors name the file, the line, the entry and the field, and say what to do."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

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


def entries(*endpoint: str) -> str:
    return "certificates:\n  - name: a\n    domain: a.test\n    endpoints:\n" + "".join(
        f"      - {e}\n" for e in endpoint
    )


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("{host: '', port: 443}", "endpoints[0].host: the host is empty"),
        ("{host: '  '}", "endpoints[0].host: the host is empty"),
        (
            "{host: 'https://seu.example.cat/x'}",
            "endpoints[0].host: 'https://seu.example.cat/x' is a URL: write the host name only "
            "('seu.example.cat')",
        ),
        ("'https://seu.example.cat:8443'", "endpoints[0]: 'https://seu.example.cat:8443' is a URL"),
        ("{host: 'seu example.cat'}", "endpoints[0].host: 'seu example.cat' holds a space"),
        ("{host: '[::1]'}", "endpoints[0].host: '[::1]' is not a host name or an IP address"),
        ("{host: 'seu.example.cat', port: true}", "endpoints[0]: port: true is not a number"),
        ("{host: 'seu.example.cat', port: false}", "endpoints[0]: port: false is not a number"),
    ],
)
def test_hosts_and_ports_are_checked_where_they_are_written(endpoint: str, expected: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(entries(endpoint), "inv.yaml")
    assert str(caught.value).startswith(f"inv.yaml:5: certificates[0] (a).{expected}"), str(
        caught.value
    )


def test_good_hosts_still_load() -> None:
    inventory = parse_inventory(
        entries(
            "{host: 'fd00::1', port: '8443'}",
            "{host: 'fe80::1%eth0'}",
            "{host: 'web_01.intranet.local.'}",
            "{host: 10.0.0.5}",
        ),
        "inv.yaml",
    )
    assert [t.label for t in targets(inventory)] == [
        "[fd00::1]:8443",
        "[fe80::1%eth0]:443",
        "web_01.intranet.local.:443",
        "10.0.0.5:443",
    ]


def test_a_threshold_given_as_true_is_refused() -> None:
    with pytest.raises(
        InventoryError, match=r"inv.yaml:1: defaults: warn_days: true is not a number"
    ):
        parse_inventory("defaults: {warn_days: true}\ncertificates: []\n", "inv.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "certificates:\n  - {name: a, domain: a.test, endpoints: ['h:1']}\n"
            "defaults: {warn_days: 30}\n"
            "certificates:\n  - {name: b, domain: b.test, endpoints: ['h:1']}\n",
            "inv.yaml:4: the key 'certificates' is written a second time in the same block "
            "(first at line 1); YAML would keep only the last one",
        ),
        (
            "certificates:\n  - name: a\n    domain: a.test\n    name: b\n    endpoints: ['h:1']\n",
            "inv.yaml:4: the key 'name' is written a second time in the same block (first at "
            "line 2)",
        ),
        (
            "certificates: [{name: a, domain: a.test, endpoints: [{host: h, port: 1, port: 2}]}]\n",
            "inv.yaml:1: the key 'port' is written a second time",
        ),
        (
            "certificates: &all\n  - {name: a, domain: a.test, endpoints: ['h:1'], more: *all}\n",
            "inv.yaml:1: the block that starts here holds an alias (*name) to itself",
        ),
        # libyaml refuses the depth itself; the pure-Python parser recurses until Python stops it.
        (
            "certificates: " + "[" * 5000 + "]" * 5000 + "\n",
            "inv.yaml:1: not valid YAML: exceeded maximum nesting depth"
            if yaml.__with_libyaml__
            else "inv.yaml: nested too deeply",
        ),
        ("certificates: *nowhere\n", "inv.yaml:1: not valid YAML: found undefined alias"),
        ("certificates: !!python/object:os.system {}\n", "inv.yaml:1: not valid YAML"),
    ],
)
def test_hostile_or_odd_yaml_is_one_line(text: str, expected: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def billion_laughs(levels: int) -> str:
    """The classic alias bomb: each level repeats the one before ten times."""
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        repeated = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{repeated}]")
    return "\n".join(lines) + "\ncertificates: []\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_an_alias_bomb_is_refused_before_anything_walks_it(levels: int) -> None:
    """9 levels expand to a billion values: refused from the written nodes alone."""
    with pytest.raises(InventoryError) as caught:
        parse_inventory(billion_laughs(levels), "inv.yaml")
    message = str(caught.value)
    assert message.startswith("inv.yaml: aliases (*name) expand this file's "), message
    assert f"{10**levels:,}"[:2] in message.split(" to ")[1]
    assert "write the entries out" in message


def test_aliases_within_reason_still_work() -> None:
    text = (
        "certificates:\n"
        "  - {name: a, domain: a.test, endpoints: &web [{host: web.intranet, port: 8443}]}\n"
        "  - {name: b, domain: b.test, endpoints: *web}\n"
    )
    inventory = parse_inventory(text, "inv.yaml")
    assert [t.label for t in targets(inventory)] == ["web.intranet:8443", "web.intranet:8443"]


def as_nobody(call: Callable[[], object]) -> str:
    """The message `call` fails with, run in a child process without root's rights.

    Root reads any file whatever its mode, so an unreadable file needs a user
    who cannot: the child drops to `nobody` and reports back through a pipe.
    """
    if os.geteuid() != 0:
        try:
            call()
        except InventoryError as exc:
            return str(exc)
        return "no error"
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        message = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            call()
        except InventoryError as exc:
            message = str(exc)
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(writer, message.encode())
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        message = answer.read().decode()
    os.waitpid(pid, 0)
    return message


def test_an_unreadable_inventory_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(GOOD, encoding="utf-8")
    path.chmod(0)
    message = as_nobody(lambda: load_inventory(path))
    assert message.startswith(f"inventory {path} cannot be read (permission denied): make it"), (
        message
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda p: p.write_bytes(b"certificates:\n  - name: caf\xe9\n"),
            "{p}:2: inventory is not UTF-8 text (byte 0xe9): save it as UTF-8",
        ),
        (lambda p: p.mkdir(), "inventory {p} is a folder: name the file itself"),
        (
            lambda p: p.symlink_to(p),
            "inventory {p} is a symbolic link that leads back to itself: point it at the file",
        ),
    ],
    ids=["latin-1", "folder", "symlink-loop"],
)
def test_an_odd_inventory_file_is_one_line(
    tmp_path: Path, make: Callable[[Path], object], expected: str
) -> None:
    path = tmp_path / "inventory.yaml"
    make(path)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value) == expected.format(p=path)


def test_a_file_that_never_ends_is_refused() -> None:
    with pytest.raises(InventoryError, match=r"inventory /dev/zero is larger than 64 MiB"):
        load_inventory(Path("/dev/zero"))


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert len(load_inventory(path).certificates) == 2


def answer(text: str) -> object:
    """What reading `text` gives: the inventory, or the one-line message."""
    try:
        return parse_inventory(text, "inv.yaml", base=Path("/srv"))
    except InventoryError as exc:
        return str(exc)


MANY = "certificates:\n" + "".join(
    f"  - name: e{i}\n    domain: e{i}.test\n    endpoints: ['h{i}:443']\n" for i in range(50)
)


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        MANY,
        MANY.replace("domain: e37.test", "domain: 'e 37'"),
        MANY.replace("['h42:443']", "['h42:443']\n    port: 1"),
        MANY.replace("name: e44", "name: e3"),
        MANY + "defaults: {warn_days: 5, critical_days: 3}\n",
        MANY.replace("name: e20\n", "name: e20\n    critical_days: 9\n")
        + "defaults: {warn_days: 5, critical_days: 3}\n",
        MANY + "defaults: {warn_days: 5, critical_days: 9}\n",
        MANY + "colour: red\n",
        MANY + "certificates: []\n",
        "certificates:\n  - {name: a, domain: a.test, files: [{path: a.p12}, {path: /b.p12}]}\n",
        "certificates:\n  - 5\n",
        "certificates:\n",
        "certificates: {name: a}\n",
        "defaults: {warn_days: x}\n",
        "? [a]\n: b\n",
        "certificates: []\n---\ncertificates: []\n",
        "",
        "- a\n",
    ],
)
def test_reading_entry_by_entry_answers_as_reading_the_whole_document(text: str) -> None:
    """A plain document is read one entry at a time; a comment with `*` forces the whole reading."""
    assert answer(text) == answer(text + "# * !\n")


def test_entries_that_share_their_written_fields_stay_apart_when_copied() -> None:
    """Entries written alike share one set of field names; a changed copy gets its own."""
    inventory = parse_inventory(
        "certificates:\n  - {name: a, domain: a.test, endpoints: ['h:1']}\n"
        "  - {name: b, domain: b.test, endpoints: ['h:1']}\n",
        "inv.yaml",
    )
    a, b = inventory.certificates
    copied = a.model_copy(update={"owner": "someone"})
    assert copied.model_fields_set == {"name", "domain", "endpoints", "owner"}
    assert a.model_fields_set == b.model_fields_set == {"name", "domain", "endpoints"}
    assert b.model_dump(exclude_unset=True) == {
        "name": "b",
        "domain": "b.test",
        "endpoints": [{"host": "h", "port": 1}],
    }


def test_lookup_by_name_then_domain_follows_a_copy_with_other_entries() -> None:
    inventory = parse_inventory(
        "certificates:\n"
        "  - {name: a, domain: x.example.cat, endpoints: ['h:1']}\n"
        "  - {name: x.example.cat, domain: y.example.cat, endpoints: ['h:1']}\n"
        "  - {name: c, domain: y.example.cat, endpoints: ['h:1']}\n"
    )
    assert inventory.get("a").name == "a"
    assert inventory.get("x.example.cat").name == "x.example.cat"  # a name before a domain
    assert inventory.get("Y.Example.Cat").name == "x.example.cat"  # the first with that domain
    # A copy with fewer entries must not answer from the original's index.
    part = inventory.model_copy(update={"certificates": inventory.certificates[2:]})
    assert part.get("c").name == "c"
    with pytest.raises(InventoryError, match="no certificate named 'a'"):
        part.get("a")
    assert inventory.get("a").name == "a"
