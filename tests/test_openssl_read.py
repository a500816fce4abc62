"""Every certificate OpenSSL reads is read: its expiry is never hidden by a part we cannot parse.

The certificates are built byte by byte (tests/odd_certs.py) and `openssl x509`
is the oracle: what it prints for notBefore, notAfter, serial, subject, issuer
and fingerprint is what the scan and step 4 must report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from certrenew.cli import app
from certrenew.inventory import CertificateEntry, Inventory
from certrenew.lab.tls import LeafCertificate, TLSServer
from certrenew.pki.certs import certificate_facts, load_certificate
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import classify_file, public_key_fingerprint
from certrenew.pki.issued import check_issued_certificate
from certrenew.pki.outer import read_outer_certificate, rfc4514
from certrenew.probe import run_scan
from certrenew.renewal_need import expiry_table, renewal_decisions
from tests import odd_certs
from tests.odd_certs import (
    CERTIFICATE_POLICIES,
    EXTENDED_KEY_USAGE,
    MALFORMED,
    SAN_WITH_NETMASK,
    SCT_LIST,
    SCT_UNKNOWN_VERSION,
    SUBJECT_ALT_NAME,
    oid,
    openssl_view,
    pem,
    seq,
    with_extension,
)
from tests.pki import ec_key

DOMAIN = "odd.example.cat"
NOW = datetime(2026, 3, 1, tzinfo=UTC)  # 365 days before the forged certificates expire

ODD: dict[str, Callable[[], bytes]] = {
    "malformed SCT list": lambda: with_extension(SCT_LIST, MALFORMED),
    "malformed certificate policies": lambda: with_extension(CERTIFICATE_POLICIES, MALFORMED),
    "malformed extended key usage": lambda: with_extension(EXTENDED_KEY_USAGE, MALFORMED),
    "malformed subjectAltName": lambda: with_extension(SUBJECT_ALT_NAME, MALFORMED),
    "DSA key with parameters from the issuer": odd_certs.dsa_without_parameters,
    "NULL signature-algorithm parameters": odd_certs.null_signature_parameters,
}
FORMS: dict[str, Callable[[bytes], bytes]] = {
    "DER": lambda der: der,
    "PEM": pem,
    "legacy X509 CERTIFICATE PEM": lambda der: pem(der, "X509 CERTIFICATE"),
    # OpenSSL's trusted form: the certificate, then what it is trusted for (serverAuth).
    "TRUSTED CERTIFICATE PEM": lambda der: pem(
        der + seq(seq(oid("1.3.6.1.5.5.7.3.1"))), "TRUSTED CERTIFICATE"
    ),
}


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("odd")
    files = {}
    for index, (case, build) in enumerate(ODD.items()):
        der = build()
        for form, encode in FORMS.items():
            path = folder / f"{index}-{form.split()[0]}.crt"
            path.write_bytes(encode(der))
            files[case, form] = path
    return files


def _ids() -> list[tuple[str, str]]:
    return [(case, form) for case in ODD for form in FORMS]


@pytest.mark.parametrize(("case", "form"), _ids(), ids=[f"{c} / {f}" for c, f in _ids()])
def test_facts_agree_with_openssl(
    odd_files: dict[tuple[str, str], Path], case: str, form: str
) -> None:
    path = odd_files[case, form]
    der = load_certificate(path.read_bytes(), source=str(path))
    facts = certificate_facts(der)
    oracle = openssl_view(path)
    assert rfc4514(read_outer_certificate(der).subject) == oracle.subject
    assert facts.not_before == oracle.not_before
    assert facts.not_after == oracle.not_after
    assert facts.serial == oracle.serial
    assert facts.issuer == oracle.issuer
    assert "CN=" + (facts.subject_cn or "") in oracle.subject
    assert facts.sha256 == oracle.sha256
    assert classify_file(path.read_bytes()) == "certificate"


def test_openssl_reads_the_subject_as_we_write_it(odd_files: dict[tuple[str, str], Path]) -> None:
    oracle = openssl_view(odd_files["malformed SCT list", "DER"])
    assert oracle.subject == r"CN=odd.example.cat,O=Consorci AOC\, Serveis,C=ES"


@pytest.mark.parametrize("case", [c for c in ODD if c != "malformed subjectAltName"])
def test_names_are_read_beside_an_unreadable_part(
    odd_files: dict[tuple[str, str], Path], case: str
) -> None:
    facts = certificate_facts(load_certificate(odd_files[case, "DER"].read_bytes()))
    assert facts.sans == (DOMAIN,)
    assert facts.note is None
    assert facts.covers(DOMAIN) is True


def test_an_unreadable_subject_alt_name_makes_the_names_unknown(
    odd_files: dict[tuple[str, str], Path],
) -> None:
    facts = certificate_facts(
        load_certificate(odd_files["malformed subjectAltName", "DER"].read_bytes())
    )
    assert facts.sans is None
    assert facts.covers(DOMAIN) is None
    assert facts.note is not None and "subjectAltName extension cannot be read" in facts.note


def test_a_dsa_key_without_parameters_is_named(odd_files: dict[tuple[str, str], Path]) -> None:
    facts = certificate_facts(
        load_certificate(odd_files["DSA key with parameters from the issuer", "DER"].read_bytes())
    )
    assert (facts.key_type, facts.key_bits) == ("DSA", 0)


def _inventory(files: dict[str, Path]) -> Inventory:
    return Inventory(
        certificates=[
            CertificateEntry(name=name, domain=DOMAIN, files=[{"path": path}])
            for name, path in files.items()
        ]
    )


@pytest.mark.parametrize("form", FORMS)
def test_the_scan_reports_the_expiry_of_every_odd_file(
    odd_files: dict[tuple[str, str], Path], form: str
) -> None:
    inventory = _inventory({case: odd_files[case, form] for case in ODD})
    results = {r.name: r for r in run_scan(inventory, concurrency=2, timeout=1, now=NOW)}
    for case, result in results.items():
        assert result.error is None, (case, result.error)
        assert result.days_left == 365
        assert result.not_after == "2027-03-01T08:30:00+00:00"
        assert result.serial == "1A2B3C4D5E"
    unknown = results["malformed subjectAltName"]
    assert unknown.status == "ok"  # from the expiry alone
    assert unknown.covers_domain is None and unknown.sans is None
    assert unknown.note and "names unknown" in unknown.note
    for case in ODD.keys() - {"malformed subjectAltName"}:
        assert results[case].status == "ok" and results[case].covers_domain is True
        assert results[case].sans == [DOMAIN] and results[case].note is None


def test_an_endpoint_serving_odd_extensions_shows_its_expiry() -> None:
    key = ec_key("P-256", n=701)
    names = {
        "policies": with_extension(CERTIFICATE_POLICIES, MALFORMED),
        "sct": with_extension(SCT_LIST, SCT_UNKNOWN_VERSION),
        "san": with_extension(SUBJECT_ALT_NAME, SAN_WITH_NETMASK),
    }
    with ExitStack() as stack:
        targets = {}
        for label, der in names.items():
            leaf = LeafCertificate(x509.load_der_x509_certificate(der), key)
            targets[label] = stack.enter_context(TLSServer(leaf)).address
        inventory = Inventory(
            certificates=[
                CertificateEntry(name=label, domain=DOMAIN, endpoints=[address])
                for label, address in targets.items()
            ]
        )
        results = {r.name: r for r in run_scan(inventory, concurrency=2, timeout=5, now=NOW)}
    for label in ("policies", "sct"):
        assert results[label].status == "ok" and results[label].covers_domain is True
    assert results["san"].status == "ok" and results["san"].covers_domain is None
    assert all(r.days_left == 365 and r.error is None for r in results.values())


@dataclass(frozen=True)
class ServedAsIs(LeafCertificate):
    """A leaf the lab serves byte for byte: DER that cryptography cannot hold as a Certificate.

    `certificate` is only a stand-in; the TLS server reads `chain_pem` and `key_pem`.
    """

    as_is: bytes = b""

    @property
    def chain_pem(self) -> bytes:
        return self.as_is


def test_an_endpoint_serving_what_cryptography_refuses_shows_its_expiry() -> None:
    key = ec_key("P-256", n=701)
    stand_in = x509.load_der_x509_certificate(with_extension(SCT_LIST, SCT_UNKNOWN_VERSION))
    served = {"null": odd_certs.null_signature_parameters()}
    with ExitStack() as stack:
        targets = {
            label: stack.enter_context(TLSServer(ServedAsIs(stand_in, key, as_is=pem(der)))).address
            for label, der in served.items()
        }
        inventory = Inventory(
            certificates=[
                CertificateEntry(name=label, domain=DOMAIN, endpoints=[address])
                for label, address in targets.items()
            ]
        )
        results = {r.name: r for r in run_scan(inventory, concurrency=2, timeout=5, now=NOW)}
    for label, der in served.items():
        assert results[label].error is None, results[label].error
        assert results[label].sha256 == hashlib.sha256(der).hexdigest()
        assert (results[label].status, results[label].days_left) == ("ok", 365)
        assert results[label].covers_domain is True


def test_the_json_and_the_table_show_the_note(
    odd_files: dict[tuple[str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "inventory.yaml"
    path = odd_files["malformed subjectAltName", "DER"]
    inventory.write_text(
        f"certificates:\n  - {{name: odd, domain: {DOMAIN}, files: [{{path: '{path}'}}]}}\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("CERTRENEW_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["scan", "--json", "--inventory", str(inventory)])
    (row,) = json.loads(result.stdout)
    assert row["note"] and "names unknown" in row["note"]
    assert row["sans"] is None and row["covers_domain"] is None and row["error"] is None
    table = CliRunner().invoke(app, ["scan", "--inventory", str(inventory)])
    assert "subjectAltName extension cannot be read" in table.stdout
    assert "unexpected failure" not in table.stdout


# --- step 4: the certificate the CA sent --------------------------------------------------

KEY = public_key_fingerprint(ec_key("P-256", n=701).public_key())


def _step4(data: bytes) -> None:
    check_issued_certificate(
        data, key_fingerprint=KEY, domain=DOMAIN, max_lifetime_days=1000, now=NOW
    )


@pytest.mark.parametrize(
    "case",
    [
        "malformed SCT list",
        "malformed certificate policies",
        "malformed extended key usage",
        "NULL signature-algorithm parameters",
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_step_4_accepts_a_certificate_with_a_part_nothing_here_needs(
    odd_files: dict[tuple[str, str], Path], case: str, form: str
) -> None:
    data = odd_files[case, form].read_bytes()
    issued = check_issued_certificate(
        data, key_fingerprint=KEY, domain=DOMAIN, max_lifetime_days=1000, now=NOW
    )
    assert issued.facts.not_after == openssl_view(odd_files[case, form]).not_after
    assert load_certificate(issued.leaf_pem) == load_certificate(data)


def test_step_4_refuses_names_it_cannot_check(odd_files: dict[tuple[str, str], Path]) -> None:
    with pytest.raises(CertificateError) as caught:
        _step4(odd_files["malformed subjectAltName", "PEM"].read_bytes())
    message = str(caught.value)
    assert "names cannot be checked: the subjectAltName extension cannot be read" in message
    assert "ask the CA to issue it again for odd.example.cat" in message


def test_step_4_names_a_dsa_key_instead_of_calling_the_file_broken(
    odd_files: dict[tuple[str, str], Path],
) -> None:
    with pytest.raises(CertificateError) as caught:
        check_issued_certificate(
            odd_files["DSA key with parameters from the issuer", "DER"].read_bytes(),
            key_fingerprint=KEY,
            domain=DOMAIN,
            max_lifetime_days=1000,
            now=NOW,
        )
    message = str(caught.value)
    assert "not a certificate" not in message and "damaged" not in message
    assert "does not match the key" in message


def test_the_detection_table_carries_the_note(odd_files: dict[tuple[str, str], Path]) -> None:
    inventory = _inventory({"odd": odd_files["malformed subjectAltName", "DER"]})
    results = run_scan(inventory, concurrency=1, timeout=1, now=NOW)
    (row,) = expiry_table(results, renewal_decisions(results, inventory))
    assert row["status"] == "ok" and row["covers_domain"] is None
    assert "names unknown" in row["note"]
