"""Certificates (step 4) and CSRs with keys (step 1) as people hand them in, case by case.

Each case goes through the real step (`.fn`, the local tracker and archive as
configured): a form-pasted text or a ticket attachment, built here with
`cryptography` the way a CA or the systems team makes them. A refusal must say
what is wrong and what to do, be commented on the ticket, and leave the
renewal where it was: the same step, given the right file next, accepts it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certrenew.adapters.wiring import RenewalContext, renewal_context
from certrenew.config import load_settings
from certrenew.pki.errors import CertificateError
from certrenew.pki.pkcs12 import check_pkcs12
from certrenew.renewal import (
    CsrRecord,
    RenewalTickets,
)
from certrenew.tasks.tickets import (
    collect_certificate,
    collect_csr_and_key,
    open_csr_ticket,
    open_service_owner_ticket,
)
from tests.fixtures_renewal import example_config, renewal_start
from tests.odd_certs import (
    NULL,
    SUBJECT_ALT_NAME,
    dns_names,
    extension,
    forge,
    oid,
    seq,
    tlv,
)
from tests.odd_certs import pem as odd_pem
from tests.pki import DOMAIN, TestCA, der, key_pem, make_csr, pem, rsa_key, subject_name

DER = serialization.Encoding.DER
ECDSA_SHA1 = "1.2.840.10045.4.1"
RSA_SHA1 = "1.2.840.113549.1.1.5"
CA = "CESICAT"
CAP_DAYS = 398
# Words by which a message says what to do next.
ACTIONS = ("ask ", "give ", "attach", "check ", "choose ")


@dataclass(frozen=True)
class Given:
    """A file handed in: pasted into the form's field, or attached to the ticket as `name`."""

    data: bytes
    name: str = ""  # "" when pasted

    def pasted(self, field: str) -> dict[str, str]:
        return {} if self.name else {field: self.data.decode()}


OUR_CA = TestCA(0)
OTHER_CA = TestCA(1)
KEY = rsa_key(2048)
CSR = make_csr(KEY)


def issued(**changes: object) -> x509.Certificate:
    """The certificate our CA issues for the renewal's key, with `changes`."""
    public_key = changes.pop("public_key", KEY.public_key())
    return OUR_CA.issue(public_key, **changes)  # type: ignore[arg-type]


def sha1_signed() -> x509.Certificate:
    """Our CA's leaf for the renewal's key, signed with ECDSA and SHA-1 (OpenSSL 3 signs
    no SHA-1 through cryptography's builder, so it is put together from its DER)."""
    now = datetime.now(UTC)
    der = forge(
        public_key_info=KEY.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        cn=DOMAIN,
        issuer_cn="Test Issuing CA 0",
        signature_algorithm=seq(oid(ECDSA_SHA1)),
        extensions=(extension(SUBJECT_ALT_NAME, dns_names(DOMAIN)),),
        not_before=tlv(0x17, (now - timedelta(hours=1)).strftime("%y%m%d%H%M%SZ").encode()),
        not_after=tlv(0x17, (now + timedelta(days=90)).strftime("%y%m%d%H%M%SZ").encode()),
    )
    return x509.load_der_x509_certificate(der)


def sha1_csr() -> bytes:
    """The renewal's CSR signed again, correctly, with RSA and SHA-1."""
    request = x509.load_pem_x509_csr(CSR).tbs_certrequest_bytes
    signature = KEY.sign(request, padding.PKCS1v15(), hashes.SHA1())
    der = seq(request, seq(oid(RSA_SHA1), NULL), tlv(0x03, b"\x00" + signature))
    return odd_pem(der, "CERTIFICATE REQUEST")


def p7b(encoding: serialization.Encoding, *certs: x509.Certificate) -> bytes:
    return pkcs7.serialize_certificates(list(certs), encoding)


def p12() -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"seu", KEY, issued(), None, serialization.BestAvailableEncryption(b"pw")
    )


# The step-4 table: (case, what is handed in, None when accepted else words of the refusal).
CERTIFICATES: list[tuple[str, Callable[[], Given], tuple[str, ...] | None]] = [
    ("leaf pasted as PEM", lambda: Given(pem(issued())), None),
    ("DER attached as .crt", lambda: Given(der(issued()), "seu.crt"), None),
    ("PEM attached as .der", lambda: Given(pem(issued()), "seu.der"), None),
    (
        "bundle, leaf first",
        lambda: Given(pem(issued(), OUR_CA.intermediate, OUR_CA.root)),
        None,
    ),
    (
        "bundle, root first",
        lambda: Given(pem(OUR_CA.root, OUR_CA.intermediate, issued()), "bundle.pem"),
        None,
    ),
    (
        "PKCS#7 PEM (.p7b)",
        lambda: Given(
            p7b(serialization.Encoding.PEM, OUR_CA.root, issued(), OUR_CA.intermediate),
            "seu.p7b",
        ),
        None,
    ),
    (
        "PKCS#7 DER (.p7b)",
        lambda: Given(p7b(serialization.Encoding.DER, OUR_CA.intermediate, issued()), "seu.p7b"),
        None,
    ),
    (
        "garbage",
        lambda: Given(b"Benvolgut usuari, adjuntem el certificat.\n", "seu.crt"),
        ("is not a certificate", "give the .crt"),
    ),
    ("truncated PEM", lambda: Given(pem(issued())[:500]), ("damaged or truncated",)),
    ("truncated DER", lambda: Given(der(issued())[:300], "seu.cer"), ("truncated",)),
    ("PKCS#12 instead", lambda: Given(p12(), "seu.p12"), ("PKCS#12",)),
    ("a CSR instead", lambda: Given(CSR, "seu.crt"), ("is not a certificate", "CSR")),
    (
        "the key beside it",
        lambda: Given(key_pem(KEY) + pem(issued()), "seu.pem"),
        ("private key", "certificate alone"),
    ),
    (
        "wrong key",
        lambda: Given(pem(issued(public_key=rsa_key(2048, n=1).public_key()))),
        ("does not match the key", "ask the CA"),
    ),
    (
        "wrong domain",
        lambda: Given(pem(issued(cn="altre.example.cat", sans=("altre.example.cat",)))),
        (f"does not cover {DOMAIN}", "altre.example.cat"),
    ),
    (
        "wrong issuer",
        lambda: Given(pem(OTHER_CA.issue(KEY.public_key()))),
        ("issued by 'CN=Test Issuing CA 1'", f"not by {CA}", "choose the CA"),
    ),
    (
        "expired",
        lambda: Given(pem(issued(not_before=datetime.now(UTC) - timedelta(days=100), days=10))),
        ("expired on",),
    ),
    (
        "not yet valid",
        lambda: Given(pem(issued(not_before=datetime.now(UTC) + timedelta(days=10)))),
        ("only valid from", "clock"),
    ),
    ("SHA-1 signature", lambda: Given(pem(sha1_signed())), ("signed with SHA-1", "SHA-256")),
    (
        "lifetime above the cap",
        lambda: Given(pem(issued(days=CAP_DAYS + 2))),
        (f"longer than the {CAP_DAYS} days allowed", "reissue"),
    ),
    (
        "chain of another CA",
        lambda: Given(pem(issued(), OTHER_CA.intermediate)),
        ("chain does not link", "Test Issuing CA 1"),
    ),
]


@pytest.fixture
def ctx(tmp_path: Path) -> RenewalContext:
    settings = load_settings(
        example_config(
            tmp_path / "certrenew.toml",
            data_dir=str(tmp_path / "data"),
            renewal={"attachment_poll_minutes": 0, "max_lifetime_days": CAP_DAYS},
            local_archive={"path": str(tmp_path / "archive")},
        )
    )
    route = settings.ca_routes[CA].model_copy(update={"issuers": ["Test Issuing CA 0"]})
    settings = settings.model_copy(update={"ca_routes": {**settings.ca_routes, CA: route}})
    return renewal_context(settings, notice_channels=[])




def refused_well(problem: object, words: tuple[str, ...], comments: list[str]) -> None:
    """One refusal: the words, something to do, and the same text on the ticket."""
    assert isinstance(problem, str), f"accepted, expected a refusal with {words}"
    for word in words:
        assert word in problem, problem
    assert any(action in problem for action in ACTIONS), f"says nothing to do: {problem}"
    assert "\n" not in problem.strip()
    assert any(problem in comment for comment in comments), comments


@pytest.mark.parametrize(
    ("given", "refusal"), [c[1:] for c in CERTIFICATES], ids=[c[0] for c in CERTIFICATES]
)
def test_a_certificate_handed_in_at_step_4(
    ctx: RenewalContext, given: Callable[[], Given], refusal: tuple[str, ...] | None
) -> None:
    renewal = renewal_start(DOMAIN, ca=CA)
    ticket = open_csr_ticket.fn(ctx, renewal)
    ctx.tracker.add_attachment(ticket, "seu.csr", CSR)
    ctx.tracker.add_attachment(ticket, "seu.key", key_pem(KEY))
    csr = collect_csr_and_key.fn(ctx, renewal, ticket, {}, 1)
    assert isinstance(csr, CsrRecord), csr
    tickets = RenewalTickets(owner=open_service_owner_ticket.fn(ctx, renewal), csr=ticket)
    handed = given()
    if handed.name:
        ctx.tracker.add_attachment(ticket, handed.name, handed.data)

    first = collect_certificate.fn(
        ctx, renewal, csr, tickets, handed.pasted("certificate_pem"), 1, CA
    )

    if refusal is None:
        assert not isinstance(first, str), first
        assert first.serial and first.not_after > datetime.now(UTC)
        return
    refused_well(first, refusal, ctx.tracker.comments(ticket))
    right = issued()
    then = collect_certificate.fn(
        ctx, renewal, csr, tickets, {"certificate_pem": pem(right).decode()}, 2, CA
    )
    assert not isinstance(then, str), then
    assert then.sha256 == right.fingerprint(hashes.SHA256()).hex()


def csr_with(
    key: object = KEY,
    name: x509.Name | None = None,
    sans: tuple[x509.GeneralName, ...] = (x509.DNSName(DOMAIN),),
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(name or subject_name())
    builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def key_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# The step-1 table: (case, (.csr, .key) as attached, None when accepted else refusal words).
CSRS: list[tuple[str, Callable[[], tuple[bytes, bytes]], tuple[str, ...] | None]] = [
    ("PEM CSR and key", lambda: (CSR, key_pem(KEY)), None),
    ("DER CSR and DER key", lambda: (make_csr(KEY, encoding=DER), key_der(KEY)), None),
    (
        "the names of the certificate replaced",
        lambda: (
            csr_with(sans=(x509.DNSName(DOMAIN), x509.DNSName(f"www.{DOMAIN}"))),
            key_pem(KEY),
        ),
        None,
    ),
    ("garbage CSR", lambda: (b"\x00\x01 not a CSR at all", key_pem(KEY)), ("not a CSR",)),
    ("truncated PEM CSR", lambda: (CSR[:300], key_pem(KEY)), ("damaged or truncated",)),
    (
        "wrong key",
        lambda: (CSR, key_pem(rsa_key(2048, n=1))),
        ("does not belong to the CSR", "ask the systems team"),
    ),
    (
        "wrong domain",
        lambda: (csr_with(name=subject_name("altre.example.cat")), key_pem(KEY)),
        ("Common Name (CN) is 'altre.example.cat'", f"CN={DOMAIN}"),
    ),
    (
        "wrong subject",
        lambda: (csr_with(name=subject_name(organization="Una Altra Entitat")), key_pem(KEY)),
        ("Organization (O) is 'Una Altra Entitat'", "csr.organization"),
    ),
    (
        "extra SANs",
        lambda: (
            csr_with(sans=(x509.DNSName(DOMAIN), x509.DNSName("intrus.example.org"))),
            key_pem(KEY),
        ),
        ("names beyond", "intrus.example.org", f"naming only {DOMAIN}"),
    ),
    (
        "an IP address SAN",
        lambda: (
            csr_with(sans=(x509.DNSName(DOMAIN), x509.IPAddress(ipaddress.ip_address("10.0.0.1")))),
            key_pem(KEY),
        ),
        ("names beyond", "10.0.0.1"),
    ),
    (
        "RSA 1024",
        lambda: (csr_with(key=rsa_key(1024)), key_pem(rsa_key(1024))),
        ("RSA 1024 bits", "new CSR and key"),
    ),
    (
        "SHA-1 signature",
        lambda: (sha1_csr(), key_pem(KEY)),
        ("SHA-1", "SHA-256"),
    ),
]


@pytest.mark.parametrize(("given", "refusal"), [c[1:] for c in CSRS], ids=[c[0] for c in CSRS])
def test_a_csr_and_key_handed_in_at_step_1(
    ctx: RenewalContext,
    given: Callable[[], tuple[bytes, bytes]],
    refusal: tuple[str, ...] | None,
) -> None:
    plain = renewal_start(DOMAIN, ca=CA)
    renewal = replace(plain, old=replace(plain.old, sans=(DOMAIN, f"www.{DOMAIN}")))
    ticket = open_csr_ticket.fn(ctx, renewal)
    csr_data, key_data = given()
    ctx.tracker.add_attachment(ticket, "seu.csr", csr_data)
    ctx.tracker.add_attachment(ticket, "seu.key", key_data)

    first = collect_csr_and_key.fn(ctx, renewal, ticket, {}, 1)

    if refusal is None:
        assert isinstance(first, CsrRecord), first
        return
    refused_well(first, refusal, ctx.tracker.comments(ticket))
    ctx.tracker.add_attachment(ticket, "seu-2.csr", CSR)
    ctx.tracker.add_attachment(ticket, "seu-2.key", key_pem(KEY))
    then = collect_csr_and_key.fn(ctx, renewal, ticket, {}, 2)
    assert isinstance(then, CsrRecord), then


def test_a_p12_from_another_issuer_is_refused_as_a_certificate_is() -> None:
    """The .p12 route checks its certificate with the same rules, the issuer included."""
    with pytest.raises(CertificateError) as refused:
        check_pkcs12(
            p12(), "pw", domain=DOMAIN, max_lifetime_days=CAP_DAYS, issuers=["EACAT"], ca="EACAT"
        )
    assert "issued by 'CN=Test Issuing CA 0', not by EACAT" in str(refused.value)
    accepted, _ = check_pkcs12(
        p12(), "pw", domain=DOMAIN, max_lifetime_days=CAP_DAYS, issuers=["test issuing ca 0"]
    )
    assert accepted.facts.subject_cn == DOMAIN
