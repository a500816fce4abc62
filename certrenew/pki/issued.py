"""Step 4 of the runbook: is the file the CA sent the certificate for this renewal?

Self-contained like certrenew.pki.certs. A CA mails a leaf alone, a leaf with its
chain in one PEM, DER, or a PKCS#7 bundle whose certificates come in any
order; all are accepted and the leaf is found by its public key, not by its
position. Messages say what is wrong and what to ask for; the caller adds
which ticket or form the file came from.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import SignatureAlgorithmOID

from certrenew.pki.certs import (
    CertificateFacts,
    certificate_ders,
    certificate_facts,
    certificate_public_key,
    load_certificate,
    pem_certificate,
)
from certrenew.pki.csr import key_problem
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import PEM_LABEL, classify_file, describe_file, public_key_fingerprint
from certrenew.pki.outer import read_outer_certificate, rfc4514

# What any certificate issued today must at least have (the CSR rules are
# stricter and configurable; these catch a CA mistake or a foreign file).
MIN_RSA_BITS = 2048
EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")
# A CA's clock and ours may differ a little; more than this is a wrong date.
NOT_BEFORE_TOLERANCE = timedelta(days=1)
# Signatures browsers refuse (SHA-1 since 2017, MD5 and MD2 long before): name → OIDs.
WEAK_SIGNATURES = {
    "SHA-1": (
        SignatureAlgorithmOID.RSA_WITH_SHA1.dotted_string,
        "1.3.14.3.2.29",  # sha1WithRSASignature, the old OIW number
        SignatureAlgorithmOID.ECDSA_WITH_SHA1.dotted_string,
        SignatureAlgorithmOID.DSA_WITH_SHA1.dotted_string,
    ),
    "MD5": (SignatureAlgorithmOID.RSA_WITH_MD5.dotted_string,),
    "MD2": ("1.2.840.113549.1.1.2",),
}

_ASK_AGAIN = "ask the CA (or whoever forwarded it) for the certificate issued from that CSR"


@dataclass(frozen=True)
class IssuedCertificate:
    """The accepted leaf, its chain leaf-first (b"" when none came), and its facts."""

    leaf_pem: bytes
    chain_pem: bytes
    facts: CertificateFacts


def check_issued_certificate(
    data: bytes,
    *,
    key_fingerprint: str,
    domain: str,
    max_lifetime_days: int,
    now: datetime | None = None,
    chain: bytes | None = None,
    issuers: Collection[str] = (),
    ca: str = "the CA",
) -> IssuedCertificate:
    """Refuse a certificate that cannot be installed for `domain` with the renewal's key.

    Its facts come from the outer structure (certrenew.pki.outer), so an
    extension nothing needs here does not stop the renewal; the names must be
    readable, since they are checked. `issuers` are words one of which the
    issuer's name must contain when `ca` issued it (none: any issuer).
    """
    now = now or datetime.now(UTC)
    given = load_certificates(data, "the certificate file")
    extra = load_certificates(chain, "the chain file") if chain else []
    leaf = _leaf(given, key_fingerprint)
    facts = certificate_facts(leaf)
    public_key = certificate_public_key(leaf)
    if public_key is None:
        problem: str | None = f"key ({facts.key_type}) cannot be read"
    else:
        problem = key_problem(public_key, min_rsa_bits=MIN_RSA_BITS, ec_curves=EC_CURVES)
    if problem:
        raise CertificateError(
            f"the certificate's {problem}: it cannot be installed; the renewal needs a new "
            "CSR and key from the systems team"
        )
    _check_signature(leaf)
    _check_issuer(facts, issuers, ca)
    _check_names(facts, domain)
    _check_dates(facts, now, max_lifetime_days)
    ordered = _chain_from(leaf, [c for c in given + extra if c != leaf])
    return IssuedCertificate(
        leaf_pem=pem_certificate(leaf),
        chain_pem=b"".join(c.public_bytes(Encoding.PEM) for c in ordered),
        facts=facts,
    )


def load_certificates(data: bytes, source: str) -> list[bytes]:
    """DER of every certificate in PEM, DER or PKCS#7 (PEM or DER) bytes, in file order."""
    kind = classify_file(data)
    if kind == "pkcs7":
        loader = pkcs7.load_pem_pkcs7_certificates
        if not PEM_LABEL.search(data):
            loader = pkcs7.load_der_pkcs7_certificates
        try:
            certs = loader(data)
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
            raise CertificateError(
                f"{source}: is a PKCS#7 bundle that cannot be read (damaged or truncated): "
                "ask for the file again"
            ) from None
        if not certs:
            raise CertificateError(f"{source}: is a PKCS#7 bundle without certificates")
        return [cert.public_bytes(Encoding.DER) for cert in certs]
    if kind == "private_key" and b"CERTIFICATE-----" in data:
        raise CertificateError(
            f"{source}: holds a private key beside the certificate: give the certificate "
            "alone; a private key never goes into a form or a ticket"
        )
    if kind != "certificate":
        raise CertificateError(
            f"{source}: is not a certificate: it is {describe_file(data)}; give the .crt, "
            ".cer, .pem or .p7b file the CA sent"
        )
    if PEM_LABEL.search(data):
        return certificate_ders(data, source)
    return [load_certificate(data, source=source)]


def _leaf(certs: list[bytes], key_fingerprint: str) -> bytes:
    for cert in certs:
        if _key_fingerprint(cert) == key_fingerprint:
            return cert
    found = ", ".join(f"'{_name(cert)}' (key {_key_fingerprint(cert)[:16]}…)" for cert in certs)
    raise CertificateError(
        f"the certificate's public key does not match the key from the CSR ticket (key "
        f"{key_fingerprint[:16]}…; the file holds {found}): {_ASK_AGAIN}, or ask the systems "
        "team which CSR was sent to the CA"
    )


def _key_fingerprint(der: bytes) -> str:
    """As the CSR's is computed; a key cryptography cannot load matches no CSR we accepted."""
    key = certificate_public_key(der)
    return public_key_fingerprint(key) if key is not None else "unreadable key"


def _check_signature(leaf: bytes) -> None:
    algorithm = read_outer_certificate(leaf).signature_algorithm
    for name, oids in WEAK_SIGNATURES.items():
        if algorithm in oids:
            raise CertificateError(
                f"the certificate is signed with {name}, which browsers refuse: ask the CA "
                "to issue it again with a SHA-256 signature"
            )


def _check_issuer(facts: CertificateFacts, issuers: Collection[str], ca: str) -> None:
    issuer = facts.issuer.casefold()
    if not issuers or any(word.casefold() in issuer for word in issuers):
        return
    raise CertificateError(
        f"the certificate was issued by '{facts.issuer}', not by {ca} (its issuer names "
        f"{' or '.join(repr(w) for w in issuers)}): it may belong to another request; ask "
        f"{ca} for the certificate issued from this CSR, or choose the CA that issued it"
    )


def _check_names(facts: CertificateFacts, domain: str) -> None:
    if facts.sans is None:
        raise CertificateError(
            f"the certificate's names cannot be checked: {facts.note}; browsers cannot "
            f"check them either: ask the CA to issue it again for {domain}"
        )
    if facts.covers(domain):
        return
    if facts.sans:
        names = ", ".join(facts.sans)
    else:
        names = f"CN={facts.subject_cn}" if facts.subject_cn else "no name at all"
    raise CertificateError(
        f"the certificate does not cover {domain}: it is for {names}; ask the CA for a "
        f"certificate for {domain}"
    )


def _check_dates(facts: CertificateFacts, now: datetime, max_lifetime_days: int) -> None:
    if facts.not_after <= now:
        raise CertificateError(f"the certificate expired on {_day(facts.not_after)}: {_ASK_AGAIN}")
    if facts.not_before > now + NOT_BEFORE_TOLERANCE:
        raise CertificateError(
            f"the certificate is only valid from {_day(facts.not_before)}, more than a day "
            "ahead: check this machine's clock, or ask the CA why it was dated in the future"
        )
    lifetime = facts.not_after - facts.not_before
    if lifetime > timedelta(days=max_lifetime_days):
        raise CertificateError(
            f"the certificate is valid for {lifetime.days} days, longer than the "
            f"{max_lifetime_days} days allowed (CA/Browser Forum limit): browsers will refuse "
            "it; ask the CA to reissue it with a shorter validity"
        )


def _chain_from(leaf: bytes, others: list[bytes]) -> list[x509.Certificate]:
    """The given chain certificates ordered leaf-upwards; each must sign the one before.

    A chain may stop below the root. A certificate that is no link of the
    leaf's chain means the wrong chain was sent, which the server would serve.
    Signatures are checked with cryptography, so only here must every
    certificate be one it reads.
    """
    remaining = [_parsed(c) for c in dict.fromkeys(others)]
    ordered: list[x509.Certificate] = []
    current = _parsed(leaf) if remaining else None
    while current is not None and remaining and current.issuer != current.subject:
        issuer = next((c for c in remaining if c.subject == current.issuer), None)
        if issuer is None:
            break
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise CertificateError(
                f"the chain does not link: '{_name(current)}' names '{_name(issuer)}' as its "
                "issuer but is not signed by that certificate; ask the CA for the right "
                "intermediate certificates"
            ) from None
        ordered.append(issuer)
        remaining.remove(issuer)
        current = issuer
    if remaining:
        strays = ", ".join(f"'{_name(c)}'" for c in remaining)
        raise CertificateError(
            f"the chain does not link: {strays} did not issue '{_name(current or leaf)}' nor "
            "any certificate above it; ask the CA for the intermediate certificates of this "
            "certificate"
        )
    return ordered


def _parsed(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CertificateError(
            f"the certificate '{_name(der)}' breaks the X.509 encoding rules ({exc}), so its "
            "place in the chain cannot be checked; ask the CA to issue it again, or give the "
            "certificate without its chain"
        ) from None


def _name(cert: x509.Certificate | bytes) -> str:
    if isinstance(cert, bytes):
        return rfc4514(read_outer_certificate(cert).subject)
    return cert.subject.rfc4514_string()


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
