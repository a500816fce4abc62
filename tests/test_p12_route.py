"""The .p12 route's pieces without Prefect: the file's checks, the route, the KeePass safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from pykeepass import PyKeePass

from certrenew.adapters.ca import CertificateOrder
from certrenew.adapters.ca.p12 import P12Route
from certrenew.adapters.password_safe.keepass import KeePassSafe
from certrenew.config import P12RouteSettings, load_settings
from certrenew.errors import CaError, CertificateError, ConfigError
from certrenew.lab.tls import LocalCA
from certrenew.pki.pkcs12 import check_pkcs12
from tests.contract.ca_route_contract import PersonRouteContract

EXAMPLE = Path(__file__).parent.parent / "examples" / "certrenew.toml"
DOMAIN = "segell.example.cat"
PASSWORD = "Xq7-p12-secret"


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA("p12 test CA", key_type="rsa")


def check(data: bytes, password: str = PASSWORD, domain: str = DOMAIN) -> str:
    issued, _ = check_pkcs12(data, password, domain=domain, max_lifetime_days=400)
    return issued.facts.serial


def test_a_good_p12_gives_its_certificate_and_chain(ca: LocalCA) -> None:
    leaf = ca.issue(DOMAIN, days=365, key_type="rsa")
    issued, _ = check_pkcs12(leaf.pkcs12(PASSWORD), PASSWORD, domain=DOMAIN, max_lifetime_days=400)
    assert issued.facts.covers(DOMAIN) and issued.chain_pem


def test_a_wrong_password_is_said_without_repeating_it(ca: LocalCA) -> None:
    data = ca.issue(DOMAIN, days=365, key_type="rsa").pkcs12(PASSWORD)
    with pytest.raises(CertificateError, match="password does not open") as refused:
        check(data, "not-the-password")
    assert "not-the-password" not in str(refused.value) and PASSWORD not in str(refused.value)


def test_a_p12_for_another_name_or_past_the_cap_is_refused(ca: LocalCA) -> None:
    data = ca.issue("other.example.cat", days=365, key_type="rsa").pkcs12(PASSWORD)
    with pytest.raises(CertificateError, match=f"does not cover {DOMAIN}"):
        check(data)
    long = ca.issue(DOMAIN, days=800, key_type="rsa").pkcs12(PASSWORD)
    with pytest.raises(CertificateError, match="longer than the 400 days"):
        check(long)


def test_an_expired_p12_is_refused(ca: LocalCA) -> None:
    leaf = ca.issue(DOMAIN, days=365, key_type="rsa")
    now = datetime.now(UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(leaf.certificate.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(leaf.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now - timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(
        b"x", leaf.key, expired, None, BestAvailableEncryption(PASSWORD.encode())
    )
    with pytest.raises(CertificateError, match="expired"):
        check(data)


def test_a_p12_without_a_key_is_refused(ca: LocalCA) -> None:
    one = ca.issue(DOMAIN, days=365, key_type="rsa")
    no_key = pkcs12.serialize_key_and_certificates(
        b"x", None, one.certificate, None, BestAvailableEncryption(PASSWORD.encode())
    )
    with pytest.raises(CertificateError, match="no private key"):
        check(no_key)


class TestP12Route(PersonRouteContract):
    @pytest.fixture
    def route(self) -> P12Route:
        settings = load_settings(EXAMPLE).ca_routes["EACAT"]
        assert isinstance(settings, P12RouteSettings)
        return P12Route(settings)

    @pytest.fixture
    def order(self) -> CertificateOrder:
        return CertificateOrder(DOMAIN, (DOMAIN,), "", "")

    def test_archive_folders_follow_the_certificate_kind(self, route: P12Route) -> None:
        assert route.archive_root("seal") == "CERTIFICATS/SEGELL"
        assert route.archive_root("device") == "CERTIFICATS/CDA"
        with pytest.raises(CaError, match="certificate_kind"):
            route.archive_root(None)


def test_keepass_keeps_the_password_with_notes_and_history(tmp_path: Path) -> None:
    path = tmp_path / "team.kdbx"
    safe = KeePassSafe(path, "master-Pw", None)
    where = safe.store("Certificats", "seal (seal, EACAT)", PASSWORD, "archived at X")
    assert "Certificats / seal (seal, EACAT)" in where and PASSWORD not in where
    safe.store("Certificats", "seal (seal, EACAT)", "next-year-pw", "archived at Y")
    database = PyKeePass(str(path), password="master-Pw")
    assert database.version == (4, 0) or database.version[0] == 4
    entry = database.find_entries(title="seal (seal, EACAT)", first=True)
    assert entry.password == "next-year-pw" and entry.notes == "archived at Y"
    assert [old.password for old in entry.history] == [PASSWORD]


def test_keepass_with_the_wrong_master_password_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "team.kdbx"
    KeePassSafe(path, "master-Pw", None).store("G", "t", "p", "n")
    with pytest.raises(ConfigError, match="master_password"):
        KeePassSafe(path, "wrong", None).store("G", "t", "p", "n")


def test_the_inventory_lines_to_change_are_named_by_file_and_line(tmp_path: Path) -> None:
    from certrenew.tasks.ca import inventory_lines

    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "certificates:\n"
        "  - name: segell\n"
        "    domain: segell.example.cat\n"
        "    files:\n"
        "      - {path: certs/seal.p12, password_env: SEAL_P12_PASSWORD}\n",
        encoding="utf-8",
    )
    assert inventory_lines(inventory, ("certs/seal.p12",)) == [
        "inventory.yaml line 5: `- {path: certs/seal.p12, password_env: SEAL_P12_PASSWORD}`"
    ]
    assert inventory_lines(tmp_path / "missing.yaml", ("x.p12",)) == []
