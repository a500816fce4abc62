"""The runbook's step rules, called as plain functions."""

from __future__ import annotations

from certrenew.lab.tls import LocalCA, build_csr
from certrenew.rules import (
    REUSE_WINDOW_YEARS,
    ca_named_in,
    certificate_candidates,
    newest_of_each_kind,
    reuse_years,
    role_refusal,
    step_marker,
)
from tests.pki import SUBJECT

DOMAIN = "seu.example.cat"


def test_the_last_file_of_each_kind_wins_whatever_its_name() -> None:
    first_csr, first_key = build_csr(SUBJECT, DOMAIN)
    second_csr, _ = build_csr(SUBJECT, DOMAIN)
    found = newest_of_each_kind(
        [("a.csr", first_csr), ("notes.txt", first_key), ("b.txt", second_csr), ("x", b"hello")]
    )
    assert found["csr"] == ("b.txt", second_csr)
    assert found["private_key"] == ("notes.txt", first_key)
    assert found["unknown"] == ("x", b"hello")


def test_pasted_certificate_first_then_each_ticket_newest_first() -> None:
    ca = LocalCA("rules test CA")
    old, new, other = (ca.issue(DOMAIN, days=d).cert_pem for d in (10, 20, 30))
    csr, key = build_csr(SUBJECT, DOMAIN)
    candidates = certificate_candidates(
        "pasted-pem",
        [
            ("SIS-1", [("old.crt", old), ("seu.csr", csr), ("new.crt", new), ("seu.key", key)]),
            ("ST-1", [("other.crt", other)]),
        ],
    )
    assert [source for source, _ in candidates] == [
        "certificat enganxat al formulari",
        "new.crt a SIS-1",
        "old.crt a SIS-1",
        "other.crt a ST-1",
    ]
    assert candidates[1][1] == new


def test_nothing_pasted_means_only_attachments() -> None:
    assert certificate_candidates("  \n", [("SIS-1", [("a.csr", b"not a certificate")])]) == []


def test_the_ca_is_read_when_exactly_one_configured_ca_is_named() -> None:
    cas = ["CESICAT", "EACAT", "Other"]
    assert ca_named_in(["Renoveu-lo amb cesicat, com l'any passat."], cas) == "CESICAT"
    assert ca_named_in(["CESICAT o EACAT, no ho sé"], cas) is None
    assert ca_named_in(["SEACATS no és una CA"], cas) is None
    assert ca_named_in([f"CA escollida: EACAT\n\n{step_marker('ca-chosen')}"], cas) is None
    assert ca_named_in(["Hola", "Amb EACAT"], cas) == "EACAT"


def test_the_reuse_window_is_this_year_and_the_two_before() -> None:
    assert reuse_years(2026) == [2026, 2025, 2024]
    assert len(reuse_years(2026)) == REUSE_WINDOW_YEARS


def test_a_role_with_no_members_is_open_to_anyone() -> None:
    assert role_refusal("anyone at all", [], "certificate managers") is None


def test_a_member_answers_whatever_the_case_and_spaces_of_the_login() -> None:
    assert role_refusal("  ASoler ", ["asoler", "jpuig"], "certificate managers") is None


def test_an_outsider_is_refused_with_the_role_and_who_may_answer() -> None:
    reason = role_refusal("mallory", ["asoler", "jpuig"], "certificate managers")
    assert reason is not None
    assert "'mallory' is not one of the certificate managers (asoler, jpuig)" in reason
