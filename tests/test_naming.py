"""One naming rule for a domain's folders, files and labels (wildcards included)."""

from __future__ import annotations

import pytest

from certrenew.errors import ArchiveError
from certrenew.naming import (
    archive_name_problem,
    domain_name,
    renewal_file_names,
    renewal_folder,
    renewal_slug,
)
from certrenew.renewal import renewal_id


def test_a_wildcard_domain_names_its_folder_without_the_star() -> None:
    folder = renewal_folder("CERTIFICATS/CDS", "CESICAT", 2026, "*.example.cat")
    assert folder == "CERTIFICATS/CDS/CESICAT/2026/wildcard.example.cat"
    assert "*" not in folder


def test_folder_files_and_label_spell_a_wildcard_the_same_way() -> None:
    domain = "*.Example.cat"
    folder = renewal_folder("R", "EACAT", 2026, domain)
    names = renewal_file_names(domain)
    assert folder.rsplit("/", 1)[1] == domain_name(domain) == "wildcard.example.cat"
    assert names == {
        "csr": "wildcard.example.cat.csr",
        "key": "wildcard.example.cat.key",
        "crt": "wildcard.example.cat.crt",
        "p12": "wildcard.example.cat.p12",
        "chain": "wildcard.example.cat.chain.pem",
    }
    assert renewal_slug(domain) == "wildcard.example.cat"
    assert renewal_id(domain, "ABCDEF").startswith("certrenew-wildcard.example.cat-")


def test_a_plain_domain_is_kept_as_it_is() -> None:
    assert domain_name("seu.example.cat") == "seu.example.cat"
    assert renewal_file_names("seu.example.cat")["key"] == "seu.example.cat.key"


@pytest.mark.parametrize(
    "name",
    ["*.example.cat", 'a"b', "a:b", "a<b", "a>b", "a?b", "a|b", "a\\b", "a/b", "x.", " x", "",
     "..", "CON", "com1.txt", "desktop.ini", "~$seu.key", "x_vti_y", ".lock"],
)
def test_names_sharepoint_refuses(name: str) -> None:
    assert archive_name_problem(name) is not None


@pytest.mark.parametrize(
    "name", ["seu.example.cat", "l'àrea de prova.example.cat", "CESICAT", "2026", "a.old-1.crt"]
)
def test_names_sharepoint_accepts(name: str) -> None:
    assert archive_name_problem(name) is None


def test_a_refused_root_folder_is_named_in_the_message() -> None:
    with pytest.raises(ArchiveError, match=r"'CERT\|S/CESICAT/2026/seu.example.cat'"):
        renewal_folder("CERT|S", "CESICAT", 2026, "seu.example.cat")
