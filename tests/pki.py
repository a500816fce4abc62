"""Keys, CSRs and certificates made at test time with cryptography directly.

Made without certrenew's own builders on purpose: the tests check our rules
against files made the way a CA or the systems team would make them. Only the
rules themselves (SubjectRules, plain values) come from certrenew.pki. Keys are
cached per size because RSA generation dominates the run time.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

from certrenew.pki.csr import SubjectRules

DOMAIN = "seu.example.cat"

SUBJECT = SubjectRules(
    organization="Consorci Administracio Oberta de Catalunya",
    organizational_unit="Area de Tecnologia",
    locality="Barcelona",
    state="Barcelona",
    country="ES",
    email="certificats@aoc.cat",
)

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


@functools.cache
def rsa_key(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """`n` tells apart keys of the same size (a mismatched key, a CA key)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(curve: str = "P-256", n: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve])


@functools.cache
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def pem_begin(label: str) -> bytes:
    """A PEM header line, e.g. pem_begin("PRIVATE KEY"), without key-looking text in the source."""
    return b"-----BEGIN " + label.encode() + b"-----"


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def subject_name(cn: str | None = DOMAIN, **changes: str | None) -> x509.Name:
    """The organisation's subject with CN, with fields changed or left out (None)."""
    values: dict[str, str | None] = {
        "country": SUBJECT.country,
        "state": SUBJECT.state,
        "locality": SUBJECT.locality,
        "organization": SUBJECT.organization,
        "organizational_unit": SUBJECT.organizational_unit,
        "common_name": cn,
        "email": SUBJECT.email,
    }
    values.update(changes)
    oids = {
        "country": NameOID.COUNTRY_NAME,
        "state": NameOID.STATE_OR_PROVINCE_NAME,
        "locality": NameOID.LOCALITY_NAME,
        "organization": NameOID.ORGANIZATION_NAME,
        "organizational_unit": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "common_name": NameOID.COMMON_NAME,
        "email": NameOID.EMAIL_ADDRESS,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in values.items() if v is not None])


def make_csr(
    key: CertificateIssuerPrivateKeyTypes,
    name: x509.Name | None = None,
    encoding: serialization.Encoding = serialization.Encoding.PEM,
) -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name or subject_name())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, algorithm)
    )
    return csr.public_bytes(encoding)


def make_cert(
    public_key: CertificatePublicKeyTypes,
    *,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer: x509.Name,
    cn: str = DOMAIN,
    sans: tuple[str, ...] | None = (DOMAIN,),
    not_before: datetime | None = None,
    days: int = 90,
    ca: bool = False,
) -> x509.Certificate:
    start = not_before or datetime.now(UTC) - timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


class TestCA:
    """A root and an intermediate, as a public CA hands out its chain."""

    __test__ = False

    def __init__(self, n: int = 0) -> None:
        self.root_key = ec_key("P-384", n=100 + n)
        self.root = make_cert(
            self.root_key.public_key(),
            issuer_key=self.root_key,
            issuer=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Test Root {n}")]),
            cn=f"Test Root {n}",
            sans=None,
            days=3650,
            ca=True,
        )
        self.intermediate_key = ec_key("P-256", n=200 + n)
        self.intermediate = make_cert(
            self.intermediate_key.public_key(),
            issuer_key=self.root_key,
            issuer=self.root.subject,
            cn=f"Test Issuing CA {n}",
            sans=None,
            days=1825,
            ca=True,
        )

    def issue(self, public_key: CertificatePublicKeyTypes, **kwargs: Any) -> x509.Certificate:
        return make_cert(
            public_key,
            issuer_key=self.intermediate_key,
            issuer=self.intermediate.subject,
            **kwargs,
        )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
