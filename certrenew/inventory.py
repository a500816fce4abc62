"""The inventory: every certificate the team is responsible for, where it lives.

Errors name the file, the line, the entry and the field, because the people
who edit this file are not the people who wrote the code.

The YAML is read safely (no tags that build objects), a key written twice in
one mapping is refused instead of silently losing the first value, and aliases
may not multiply the document (a billion-laughs file is refused at once, before
anything walks it).
"""

from __future__ import annotations

import gc
import hashlib
import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from yaml.composer import Composer

from certrenew.errors import InventoryError
from certrenew.input_checks import PersonWritten, read_text

_DNS_NAME = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s]+))(?::(?P<port>\d+))?$")
# Host names as resolvers take them: letters, digits, '-' and '_' (seen on intranets).
_HOST_NAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)
# Aliases may expand a document to this many times its written values, plus this many.
ALIAS_EXPANSION_FACTOR = 10
ALIAS_EXPANSION_ALLOWANCE = 100_000


class _Model(PersonWritten, BaseModel):  # BaseModel named for linters that look no further
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Model):
    warn_days: int = Field(30, ge=0)
    critical_days: int = Field(7, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.critical_days > self.warn_days:
            raise ValueError("critical_days must not be larger than warn_days")
        return self


class Endpoint(_Model):
    host: str
    port: int = Field(443, ge=1, le=65535)
    server_name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if "://" in value:
            bare = value.split("://", 1)[1].split("/", 1)[0]
            raise ValueError(f"'{value}' is a URL: write host:port only ('{bare}')")
        match = _HOST_PORT.match(value.strip())
        if not match:
            raise ValueError(f"'{value}' is not host:port (write IPv6 as [::1]:443)")
        out: dict[str, Any] = {"host": match["v6"] or match["host"]}
        if match["port"]:
            out["port"] = int(match["port"])
        return out

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not host:
            raise ValueError("the host is empty: write a host name or an IP address")
        if "://" in host:
            bare = host.split("://", 1)[1].split("/", 1)[0]
            raise ValueError(
                f"'{host}' is a URL: write the host name only ('{bare}'), the port under port"
            )
        if any(char.isspace() for char in host):
            raise ValueError(f"'{host}' holds a space: a host name has none")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if len(host) > 253 or not _HOST_NAME.fullmatch(host):
                raise ValueError(
                    f"'{host}' is not a host name or an IP address (an IPv6 address goes "
                    "without brackets here; an internationalised name in its xn-- form)"
                ) from None
        return host

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class CertificateFile(_Model):
    path: Path
    password_env: str | None = Field(
        None, description="environment variable holding the PKCS#12 password"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, value: Any) -> Any:
        if isinstance(value, dict) and "password" in value:
            raise ValueError(
                "a password is never written in the inventory: remove it, put it in an "
                "environment variable and name that variable with password_env"
            )
        return value


class CertificateEntry(_Model):
    name: str = Field(min_length=1)
    domain: str = Field(min_length=1)
    owner: str | None = None
    owner_email: str | None = Field(
        None, description="the owner's mailbox for notices (`owner` is their tracker login)"
    )
    ca: str | None = None
    # device, application, seal, ...: where a .p12 route archives it ([ca_routes.<CA>] folders).
    certificate_kind: str | None = None
    endpoints: list[Endpoint] = []
    files: list[CertificateFile] = []
    warn_days: int | None = Field(None, ge=0)
    critical_days: int | None = Field(None, ge=0)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not _DNS_NAME.fullmatch(value):
            raise ValueError(f"'{value}' is not a DNS name")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> CertificateEntry:
        if not self.endpoints and not self.files:
            raise ValueError("give at least one endpoint or file to check")
        return self

    def thresholds(self, defaults: Thresholds) -> Thresholds:
        if self.warn_days is None and self.critical_days is None:
            return defaults  # most entries: no model to build for each of their targets
        return Thresholds(
            warn_days=defaults.warn_days if self.warn_days is None else self.warn_days,
            critical_days=(
                defaults.critical_days if self.critical_days is None else self.critical_days
            ),
        )

    def server_name(self, endpoint: Endpoint) -> str:
        """SNI name: the endpoint's own, else the certificate's domain (wildcards stripped)."""
        return endpoint.server_name or self.domain.removeprefix("*.")


class _Lookup(NamedTuple):
    certificates: list[CertificateEntry]
    by_name: dict[str, CertificateEntry]
    by_domain: dict[str, CertificateEntry]


class Inventory(_Model):
    defaults: Thresholds = Thresholds()
    certificates: list[CertificateEntry] = []

    @cached_property
    def _lookup(self) -> _Lookup:
        """Entries by name and by domain (the first of each), built on the first lookup.

        A detection run looks up every certificate due: searching the list each
        time was 3.7 s of a 10,000-entry run with 1,500 due.
        """
        lookup = _Lookup(self.certificates, {}, {})
        for entry in self.certificates:
            lookup.by_name.setdefault(entry.name, entry)
            lookup.by_domain.setdefault(entry.domain, entry)
        return lookup

    def get(self, name: str) -> CertificateEntry:
        """The entry of that name, else the first whose domain it is."""
        lookup = self._lookup
        if lookup.certificates is not self.certificates:  # a copy that got other entries
            del self.__dict__["_lookup"]
            lookup = self._lookup
        entry = lookup.by_name.get(name) or lookup.by_domain.get(name.lower())
        if entry is not None:
            return entry
        known = ", ".join(e.name for e in self.certificates[:10]) or "none"
        raise InventoryError(
            f"no certificate named '{name}' in the inventory (known: {known}); "
            "check the name or add an entry"
        )


@dataclass(frozen=True)
class Target:
    """One thing to probe: an endpoint or a file of one inventory entry."""

    entry: CertificateEntry
    kind: Literal["endpoint", "file"]
    endpoint: Endpoint | None = None
    file: CertificateFile | None = None

    @property
    def label(self) -> str:
        if self.endpoint is not None:
            return self.endpoint.target
        assert self.file is not None
        return str(self.file.path)


@dataclass(frozen=True)
class Shard:
    """Part `index` of `count` disjoint parts of an inventory, for scans split across runs.

    An entry's part follows from a hash of its name alone: the same in every
    process and on every machine (Python's own hash is not), unchanged when
    other entries come or go, and all of one certificate's endpoints and files
    stay in one part.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/n`, e.g. `1/4` for the first of four parts."""
        index, slash, count = text.strip().partition("/")
        if not (slash and index.isdigit() and count.isdigit()):
            raise ValueError(f"'{text}' is not a part: write i/n, e.g. 1/4 for the first of four")
        shard = cls(int(index), int(count))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"'{text}': write i/n with i from 1 to n, e.g. 2/4")
        return shard

    def holds(self, name: str) -> bool:
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1

    def of(self, inventory: Inventory) -> Inventory:
        """The inventory with only this part's entries (their defaults unchanged)."""
        entries = [entry for entry in inventory.certificates if self.holds(entry.name)]
        return inventory.model_copy(update={"certificates": entries})

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def targets(inventory: Inventory) -> Iterator[Target]:
    """Every probe target, lazily, so huge inventories never build a second list."""
    for entry in inventory.certificates:
        for endpoint in entry.endpoints:
            yield Target(entry, "endpoint", endpoint=endpoint)
        for file in entry.files:
            yield Target(entry, "file", file=file)


def _line_map(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map every YAML path (as pydantic reports it) to its 1-based line."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(_line_map(value, (*path, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_map(item, (*path, index)))
    return lines


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _describe(data: Any, loc: tuple[Any, ...]) -> str:
    """'certificates[3] (seu.example.cat).endpoints[0].port' for a pydantic loc."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                parts[-1] += f" ({node['name']})"
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts) or "top level"


# libyaml where PyYAML was built with it: the pure-Python parser costs about 1 ms per entry.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _repeated_key(node: yaml.MappingNode, source: str) -> None:
    """A key written twice in one mapping: YAML would keep the last and drop the first."""
    first: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            _note_key(key, first, source)


def _note_key(key: yaml.ScalarNode, first: dict[tuple[str, str], int], source: str) -> None:
    """Record `key`'s line in `first`; refused if the same block already wrote it."""
    line = key.start_mark.line + 1
    if (key.tag, key.value) in first:
        raise InventoryError(
            f"{source}:{line}: the key '{key.value}' is written a second time in the same "
            f"block (first at line {first[key.tag, key.value]}); YAML would keep only the "
            "last one: merge them"
        )
    first[key.tag, key.value] = line


def _check_document(root: yaml.Node, source: str) -> None:
    """Refuse repeated keys, aliases that loop and aliases that multiply the document.

    Aliases share nodes, so the composed document stays small; it is the walk
    over it (line numbers, validation) that a billion-laughs file blows up.
    This walk visits each written node once, iteratively, and counts what the
    aliases expand to without expanding anything.
    """
    expanded: dict[int, int] = {}
    open_nodes: set[int] = {id(root)}
    stack: list[tuple[yaml.Node, Iterator[yaml.Node]]] = [(root, iter(_children(root)))]
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            open_nodes.discard(id(node))
            expanded[id(node)] = 1 + sum(expanded[id(c)] for c in _children(node))
            if isinstance(node, yaml.MappingNode):
                _repeated_key(node, source)
        elif id(child) in open_nodes:
            raise InventoryError(
                f"{source}:{child.start_mark.line + 1}: the block that starts here holds an alias "
                "(*name) to itself, which never ends: write the values out"
            )
        elif id(child) not in expanded:
            open_nodes.add(id(child))
            stack.append((child, iter(_children(child))))
    written = len(expanded)
    limit = ALIAS_EXPANSION_FACTOR * written + ALIAS_EXPANSION_ALLOWANCE
    if expanded[id(root)] > limit:
        raise InventoryError(
            f"{source}: aliases (*name) expand this file's {written:,} values to "
            f"{expanded[id(root)]:,}, more than {limit:,}: an inventory needs no such "
            "repetition; write the entries out"
        )


class _CheckingLoader(_YamlLoader):  # type: ignore[misc,valid-type]  # C or Python loader
    """Refuses a key written twice as it builds each mapping: no second walk over the nodes."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _repeated_key(node, self.source)
        return super().construct_mapping(node, deep)


def _plain(text: str) -> bool:
    """No alias (`*`) and no explicit tag (`!`): every mapping is built by construct_mapping.

    Such a document cannot loop or multiply, so the walk over all its nodes
    (a third of the load for 10,000 entries) is left out and repeated keys are
    refused while it is built.
    """
    return "*" not in text and "!" not in text


def _load_yaml(text: str, source: str) -> Any:
    """The document's data, read safely and checked; its nodes are let go before validation."""
    loader = _CheckingLoader(text, source)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if not _plain(text):
            _check_document(root, source)
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise InventoryError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise InventoryError(
            f"{source}: nested too deeply to read: an inventory is a few levels deep; check "
            "the brackets"
        ) from None
    finally:
        loader.dispose()


def _node_tree(text: str) -> yaml.Node | None:
    """The nodes of a document `_load_yaml` has already read, for the line of an error."""
    loader = _YamlLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _entry_errors(
    exc: ValidationError, data: Any, node: yaml.Node, index: int, source: str
) -> InventoryError:
    """One entry's first problem, with its line and its place in the whole inventory."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    where = f"certificates[{index}]"
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        where += f" ({data['name']})"
    if loc:
        where += f".{_describe(data, loc)}"
    line = _line_for(_line_map(node, ("certificates", index)), ("certificates", index, *loc))
    more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    return InventoryError(
        f"{source}:{line}: {where}: {err['msg'].removeprefix('Value error, ')}{more}"
    )


class _EntryReader(_CheckingLoader, Composer):
    """Reads the top-level mapping value by value and `certificates` entry by entry.

    Only one entry's nodes and data exist at a time: for 10,000 entries the
    whole node tree was some 28 MiB of Python objects next to the entries.
    """

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text, source)
        self.anchors: dict[Any, yaml.Node] = {}  # libyaml's parser does not set up a composer

    def node(self) -> yaml.Node:
        """The next whole node (no path resolvers here: parent and index go unused)."""
        node = self.compose_node(None, 0)
        assert node is not None  # None only for an alias to nothing, which the parser refuses
        return node

    def key(self, first: dict[tuple[str, str], int]) -> str | None:
        """The next top-level key, refused if written before; None if not a plain scalar."""
        node = self.node()
        if not isinstance(node, yaml.ScalarNode):
            return None
        _note_key(node, first, self.source)
        return str(node.value)

    def entries(self, base: Path | None) -> Iterator[tuple[CertificateEntry, int]]:
        """Each entry of the `certificates` sequence, validated, with its line."""
        self.get_event()
        index = 0
        shared: dict[frozenset[str], set[str]] = {}
        while not self.check_event(yaml.SequenceEndEvent):
            node = self.node()
            data = self.construct_document(node)
            try:
                entry = CertificateEntry.model_validate(data)
            except ValidationError as exc:
                raise _entry_errors(exc, data, node, index, self.source) from None
            for model in (entry, *entry.endpoints):
                _share_fields_set(model, shared)
            yield (entry if base is None else _rebased(entry, base)), node.start_mark.line + 1
            index += 1
        self.get_event()


def _share_fields_set(model: BaseModel, shared: dict[frozenset[str], set[str]]) -> None:
    """Models that had the same fields written share one set of their names.

    Pydantic keeps such a set in every model (216 bytes: a third of an entry
    with one endpoint). These models are frozen, so the set never changes in
    place; a copy (`model_copy`) gets a set of its own before it changes it.
    """
    names = model.__pydantic_fields_set__
    object.__setattr__(model, "__pydantic_fields_set__", shared.setdefault(frozenset(names), names))


def _stream_inventory(text: str, source: str, base: Path | None) -> Inventory | None:
    """The inventory read entry by entry; None for a document of another shape.

    Only a plain document (no aliases, no tags) whose top level is a mapping is
    read this way; anything else (and anything nested deeper than Python's
    composer recurses) is left to the whole-document reading, whose messages
    it keeps.
    """
    if not _plain(text):
        return None
    reader = _EntryReader(text, source)
    try:
        reader.get_event()
        if not reader.check_event(yaml.DocumentStartEvent):
            return None
        reader.get_event()
        if not reader.check_event(yaml.MappingStartEvent):
            return None
        reader.get_event()
        first: dict[tuple[str, str], int] = {}
        nodes: dict[str, yaml.Node] = {}
        entries: list[CertificateEntry] | None = None
        seen: dict[str, int] = {}
        own: list[tuple[int, int]] = []  # (index, line) of entries with their own thresholds
        while not reader.check_event(yaml.MappingEndEvent):
            key = reader.key(first)
            if key is None:
                return None
            if key != "certificates" or not reader.check_event(yaml.SequenceStartEvent):
                nodes[key] = reader.node()
                continue
            entries = []
            for entry, line in reader.entries(base):
                index = len(entries)
                if entry.name in seen:
                    raise InventoryError(
                        f"{source}:{line}: certificates[{index}] ({entry.name}): name is "
                        f"already used at line {seen[entry.name]}; names must be unique"
                    )
                seen[entry.name] = line
                if entry.warn_days is not None or entry.critical_days is not None:
                    own.append((index, line))
                entries.append(entry)
        reader.get_event()
        reader.get_event()
        if not reader.check_event(yaml.StreamEndEvent):
            return None  # a second document: the whole-document reading says so
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise InventoryError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        return None
    finally:
        reader.dispose()
    data = {key: reader.construct_document(node) for key, node in nodes.items()}
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        lines = {(): 1}
        for key, node in nodes.items():
            lines.update(_line_map(node, (key,)))
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise InventoryError(
            f"{source}:{_line_for(lines, err['loc'])}: {_describe(data, err['loc'])}: "
            f"{err['msg'].removeprefix('Value error, ')}{more}"
        ) from None
    if entries is None:
        return inventory
    for index, line in own:
        try:
            entries[index].thresholds(inventory.defaults)
        except ValidationError:
            raise _thresholds_error(
                entries[index], inventory.defaults, index, line, source
            ) from None
    return inventory.model_copy(update={"certificates": entries})


def _thresholds_error(
    entry: CertificateEntry, defaults: Thresholds, index: int, line: int, source: str
) -> InventoryError:
    return InventoryError(
        f"{source}:{line}: certificates[{index}] ({entry.name}): critical_days is larger "
        f"than warn_days once the defaults (warn_days {defaults.warn_days}, critical_days "
        f"{defaults.critical_days}) apply; set both on this entry"
    )


def parse_inventory(text: str, source: str = "<inventory>", base: Path | None = None) -> Inventory:
    streamed = _stream_inventory(text, source, base)
    if streamed is not None:
        return streamed
    data = _load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InventoryError(f"{source}:1: the inventory must be a mapping with 'certificates'")

    def line_of(loc: tuple[Any, ...]) -> int:
        # Only an error needs a line number: the nodes are read again then, not kept.
        root = _node_tree(text)
        return _line_for(_line_map(root) if root is not None else {}, loc)

    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Shorthand endpoints report a union-ish loc; keep only what exists in the YAML.
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise InventoryError(
            f"{source}:{line_of(loc)}: {_describe(data, loc)}: "
            f"{err['msg'].removeprefix('Value error, ')}{more}"
        ) from None
    seen: dict[str, int] = {}
    for index, entry in enumerate(inventory.certificates):
        if entry.name in seen:
            raise InventoryError(
                f"{source}:{line_of(('certificates', index))}: certificates[{index}] "
                f"({entry.name}): name is already used at line "
                f"{line_of(('certificates', seen[entry.name]))}; names must be unique"
            )
        seen[entry.name] = index
        try:
            entry.thresholds(inventory.defaults)
        except ValidationError:
            line = line_of(("certificates", index))
            raise _thresholds_error(entry, inventory.defaults, index, line, source) from None
    if base is not None:
        entries = [_rebased(entry, base) for entry in inventory.certificates]
        inventory = inventory.model_copy(update={"certificates": entries})
    return inventory


def _rebased(entry: CertificateEntry, base: Path) -> CertificateEntry:
    """File paths in the inventory are relative to the inventory file."""
    if all(f.path.is_absolute() for f in entry.files):
        return entry  # most entries: endpoints only, nothing to copy
    files = [
        f if f.path.is_absolute() else f.model_copy(update={"path": base / f.path})
        for f in entry.files
    ]
    return entry.model_copy(update={"files": files})


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Reading builds some 30 objects per entry and leaves no cycles behind.

    The cycle collector, run meanwhile every few hundred allocations, only
    walks those objects again and again: about 40% of loading 10,000 entries.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_inventory(path: Path) -> Inventory:
    text = read_text(
        path,
        "inventory",
        InventoryError,
        "pass --inventory or set 'inventory' in the configuration (see examples/inventory.yaml)",
    )
    with _no_cycle_collection():
        return parse_inventory(text, str(path), base=path.parent)
