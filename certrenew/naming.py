"""One naming rule for what a renewal leaves behind: folders, files and labels of a domain.

The archive is SharePoint in production, whose folder and file names may not
hold `" * : < > ? / \\ |`, may not start or end with a space or end with a
dot, and may not be one of a few reserved names. A wildcard certificate's
domain (`*.example.cat`) is therefore written `wildcard.example.cat` wherever
it names something, and every archive refuses the names SharePoint refuses,
so a renewal that works on a laptop works on SharePoint too.
"""

from __future__ import annotations

import re

from certrenew.errors import ArchiveError

WILDCARD = "wildcard"

# SharePoint Online: characters never allowed in file or folder names.
REFUSED_CHARACTERS = frozenset('"*:<>?/\\|')
# Names SharePoint (and Windows clients syncing the library) refuse whatever the case.
RESERVED_NAMES = frozenset(
    {".lock", "con", "prn", "aux", "nul", "desktop.ini", "_vti_"}
    | {f"com{n}" for n in range(10)}
    | {f"lpt{n}" for n in range(10)}
)


def domain_name(domain: str) -> str:
    """The domain as a folder or file name: the wildcard label spelled out, lower case."""
    labels = domain.strip().rstrip(".").lower().split(".")
    return ".".join(WILDCARD if label == "*" else label for label in labels)


def renewal_folder(root: str, ca: str, year: int, domain: str) -> str:
    """`<root>/<CA>/<year>/<domain>`, the runbook's layout, every segment checked."""
    folder = "/".join(part.strip("/") for part in (root, ca, str(year), domain_name(domain)))
    for segment in folder.split("/"):
        check_archive_name(segment, folder)
    return folder


def renewal_file_names(domain: str) -> dict[str, str]:
    """The runbook's file names: `<domain>.csr`, `.key`, `.crt`, `.p12`, and the chain."""
    base = domain_name(domain)
    names = {kind: f"{base}.{kind}" for kind in ("csr", "key", "crt", "p12")}
    names["chain"] = f"{base}.chain.pem"
    for name in names.values():
        check_archive_name(name, name)
    return names


def renewal_slug(domain: str) -> str:
    """The domain in a Jira label: lower-case letters, digits, dots and dashes only."""
    return re.sub(r"[^a-z0-9.-]+", "-", domain_name(domain)).strip("-")


def check_archive_name(name: str, whole: str | None = None) -> None:
    """Refuse a folder or file name SharePoint would refuse, naming the path it came from."""
    problem = archive_name_problem(name)
    if problem:
        raise ArchiveError(
            f"'{whole or name}' is not a safe archive path: {problem}; check the domain, CA "
            "and root folder names in the inventory and configuration"
        )


def archive_name_problem(name: str) -> str | None:
    """Why `name` cannot be a SharePoint folder or file name, or None when it can."""
    if not name.strip() or name in {".", ".."}:
        return f"the name {name!r} is empty or a relative reference ('.', '..')"
    refused = sorted(set(name) & REFUSED_CHARACTERS)
    if refused or "\x00" in name:
        shown = " ".join(refused) if refused else "NUL"
        return f"the name {name!r} holds characters SharePoint refuses ({shown})"
    if name != name.strip() or name.endswith("."):
        return f"the name {name!r} starts or ends with a space, or ends with a dot"
    stem = name.lower().split(".", 1)[0] if not name.startswith(".") else name.lower()
    reserved = name.lower() in RESERVED_NAMES or stem in RESERVED_NAMES
    if reserved or name.startswith("~$") or "_vti_" in name.lower():
        return f"the name {name!r} is reserved by SharePoint"
    return None
