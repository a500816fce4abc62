"""Looking for secrets everywhere a renewal leaves text behind.

A secret is looked for by value and, for multi-line secrets (PEM keys), by
each of its base64 lines, in every place a renewal writes to: the Prefect
database (runs, their parameters, states, form input, logs, artifacts, events),
the persisted step results, the serving process's console, the tracker, the
notices and the archive's manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def needles(secret: str | bytes) -> list[bytes]:
    """What to look for: the whole secret, or each key line of a PEM block."""
    raw = secret.encode() if isinstance(secret, str) else secret
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if len(lines) > 1:
        return [line for line in lines if b"-----" not in line and len(line) >= 16]
    return [raw.strip()]


def files_under(*roots: Path) -> dict[str, bytes]:
    return {
        str(path): path.read_bytes()
        for root in roots
        if root.exists()
        for path in ([root] if root.is_file() else root.rglob("*"))
        if path.is_file()
    }


def prefect_database() -> dict[str, bytes]:
    """The session's Prefect database files (SQLite, with its write-ahead log)."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    path = Path(url.split(":///", 1)[1]) if ":///" in url else None
    assert path is not None and path.exists(), f"no SQLite database at {url!r}"
    return files_under(*(path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")))


def found(secrets: Mapping[str, str | bytes], places: Mapping[str, bytes | str]) -> list[str]:
    """`<secret> in <place>` for every secret found somewhere; [] when none is."""
    hits = []
    for name, secret in secrets.items():
        for needle in needles(secret):
            for place, text in places.items():
                blob = text.encode(errors="replace") if isinstance(text, str) else text
                if needle in blob:
                    hits.append(f"{name} in {place}")
    return sorted(set(hits))


def texts(name: str, items: Iterable[str]) -> dict[str, str]:
    return {f"{name}[{index}]": text for index, text in enumerate(items)}
