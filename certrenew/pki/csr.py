"""Step 1 of the runbook: what makes a CSR and its private key acceptable.

Self-contained like certrenew.pki.certs: no Prefect, Jira or SharePoint, and no
configuration system either. The rules arrive as plain values (SubjectRules);
certrenew.config turns its settings into them. Messages say what is wrong and
what to ask for; the caller adds which ticket the file came from. Key bytes
never enter a message, only public fingerprints.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID

from certrenew.pki.certs import key_description
from certrenew.pki.errors import CertificateError
from certrenew.pki.files import (
    CSR_LABELS,
    PEM_LABEL,
    describe_file,
    is_private_key_label,
    public_key_fingerprint,
)

# Which rule must equal which subject attribute, and the words a person sees
# for it (the names openssl prints).
SUBJECT_FIELDS: tuple[tuple[str, x509.ObjectIdentifier, str], ...] = (
    ("organization", NameOID.ORGANIZATION_NAME, "Organization (O)"),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME, "Organizational Unit (OU)"),
    ("locality", NameOID.LOCALITY_NAME, "Locality (L)"),
    ("state", NameOID.STATE_OR_PROVINCE_NAME, "State (ST)"),
    ("country", NameOID.COUNTRY_NAME, "Country (C)"),
    ("email", NameOID.EMAIL_ADDRESS, "Email (emailAddress)"),
)


@dataclass(frozen=True)
class SubjectRules:
    """The subject every CSR must carry and the keys the CA takes (CN is always the domain).

    Plain values so that this library needs no configuration system: the
    project builds them with `CsrSettings.rules()`, anyone else directly. The
    field names are the ones SUBJECT_FIELDS and the messages use.
    """

    organization: str
    organizational_unit: str
    locality: str
    state: str
    country: str
    email: str
    min_rsa_bits: int = 2048
    ec_curves: tuple[str, ...] = ("secp256r1", "secp384r1")


@dataclass(frozen=True)
class CsrFacts:
    """What the flow records about an accepted CSR (all public)."""

    domain: str
    subject: dict[str, str]
    key_type: str
    key_bits: int
    fingerprint: str


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A CSR from PEM or DER; anything else is refused saying what it is instead."""
    labels = PEM_LABEL.findall(data)
    is_pem = any(label in CSR_LABELS for label in labels)
    if is_pem or not labels:
        try:
            return x509.load_pem_x509_csr(data) if is_pem else x509.load_der_x509_csr(data)
        except x509.InvalidVersion as exc:
            # Only version 1 (encoded 0) exists; cryptography says so with its own exception.
            raise CertificateError(
                f"the CSR says it is of version {exc.parsed_version + 1}, but only version 1 "
                "exists: ask the systems team to generate the CSR again (openssl req)"
            ) from None
        except ValueError:
            if is_pem:
                raise CertificateError(
                    "the CSR file holds a PEM CSR block that cannot be read: it is damaged or "
                    "truncated; ask the systems team to attach the .csr file again"
                ) from None
    raise CertificateError(
        f"the CSR file is not a CSR: it is {describe_file(data)}; ask the systems team "
        "for the .csr file (PEM starting with '-----BEGIN CERTIFICATE REQUEST-----', or DER)"
    )


def _public_key(csr: x509.CertificateSigningRequest) -> PublicKeyTypes:
    """The CSR's public key; one of a kind no library here knows is a refusal, not a crash."""
    try:
        return csr.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise CertificateError(
            "the CSR's public key is of a kind that cannot be read (neither RSA nor EC): ask "
            "the systems team for a new CSR and key (RSA 2048 or larger)"
        ) from None


def make_key_and_csr(rules: SubjectRules, names: Collection[str]) -> tuple[bytes, bytes]:
    """A new RSA key (PKCS#8 PEM, unencrypted) and a CSR for `names` with the rules' subject.

    The first name is the Common Name; every name is a SAN. For routes on which
    the flow makes the key itself (ACME): the caller stores the key at once.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=rules.min_rsa_bits)
    first, *_ = names
    subject = [
        x509.NameAttribute(oid, getattr(rules, setting)) for setting, oid, _ in SUBJECT_FIELDS
    ]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first), *subject]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def csr_names(csr_pem: bytes) -> tuple[str, ...]:
    """The DNS names a CSR asks for: its Common Name first, then its SANs, each once."""
    csr = load_csr(csr_pem)
    names = [cn] if (cn := _attribute(csr.subject, NameOID.COMMON_NAME)) else []
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += sans.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return tuple(dict.fromkeys(_dns_fold(name) for name in names))


def check_csr(
    csr_pem: bytes, rules: SubjectRules, domain: str, also: Collection[str] = ()
) -> CsrFacts:
    """Refuse a CSR the CA would reject or that carries the wrong organisation data.

    `rules` are plain values (see SubjectRules), so this check runs the same for
    the flow, the tests and anyone using the library without our configuration.
    The CSR may name `domain` and the names in `also` (those of the certificate
    it replaces), nothing else: a name more would be certified without anyone
    having asked for it.
    """
    csr = load_csr(csr_pem)
    public_key = _public_key(csr)
    # Before the signature: OpenSSL 3 no longer verifies SHA-1 ones at all.
    if _weak_hash(csr):
        raise CertificateError(
            "the CSR is signed with a hash the CA refuses (SHA-1 or older): ask the systems "
            "team to generate it again with SHA-256 (openssl req -sha256)"
        )
    if not csr.is_signature_valid:
        raise CertificateError(
            "the CSR's signature is invalid (the file was altered after it was made): "
            "ask the systems team to generate the CSR again"
        )
    found_cn = _attribute(csr.subject, NameOID.COMMON_NAME)
    if found_cn is None or _dns_fold(found_cn) != _dns_fold(domain):
        raise CertificateError(
            f"the CSR's Common Name (CN) is {_shown(found_cn)}, expected '{domain}': "
            f"ask the systems team for a CSR with CN={domain}"
        )
    _check_names(csr, domain, also)
    facts_subject = {"common_name": found_cn}
    for setting, oid, words in SUBJECT_FIELDS:
        expected: str = getattr(rules, setting)
        found = _attribute(csr.subject, oid)
        same = found is not None and (
            found.strip().casefold() == expected.casefold()
            if setting == "email"
            else found.strip() == expected
        )
        if not same:
            raise CertificateError(
                f"the CSR's {words} is {_shown(found)}, expected '{expected}' "
                f"(configured as csr.{setting}): ask the systems team for a CSR with the "
                "organisation's CSR data"
            )
        facts_subject[setting] = expected
    problem = key_problem(public_key, min_rsa_bits=rules.min_rsa_bits, ec_curves=rules.ec_curves)
    if problem:
        raise CertificateError(f"the CSR's {problem}: ask the systems team for a new CSR and key")
    key_type, key_bits = key_description(public_key)
    return CsrFacts(
        domain=domain,
        subject=facts_subject,
        key_type=key_type,
        key_bits=key_bits,
        fingerprint=public_key_fingerprint(public_key),
    )


def _weak_hash(csr: x509.CertificateSigningRequest) -> bool:
    try:
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False  # a hash OpenSSL does not know: the signature check refuses it
    return isinstance(algorithm, hashes.SHA1 | hashes.MD5)


def _check_names(csr: x509.CertificateSigningRequest, domain: str, also: Collection[str]) -> None:
    """Every name the CSR asks for is the domain or one of `also`."""
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        raise CertificateError(
            "the CSR's extensions cannot be read: ask the systems team to generate the CSR "
            "again (openssl req)"
        ) from None
    allowed = {_dns_fold(name) for name in (domain, *also)}
    extra = [
        f"{type(name).__name__.removesuffix('Name').removesuffix('Address')}:{name.value}"
        if not isinstance(name, x509.DNSName)
        else name.value
        for name in sans
        if not isinstance(name, x509.DNSName) or _dns_fold(name.value) not in allowed
    ]
    if extra:
        besides = f" (and {', '.join(also)}, the names it replaces)" if also else ""
        raise CertificateError(
            f"the CSR asks for names beyond {domain}: {', '.join(map(str, extra))}; ask the "
            f"systems team for a CSR naming only {domain}{besides}"
        )


def key_problem(
    public_key: PublicKeyTypes,
    *,
    min_rsa_bits: int,
    ec_curves: Collection[str],
) -> str | None:
    """Why a public key is not acceptable to the CA, or None when it is."""
    allowed = f"RSA of at least {min_rsa_bits} bits or EC on {', '.join(ec_curves)}"
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < min_rsa_bits:
            return (
                f"key is RSA {public_key.key_size} bits, below the minimum of {min_rsa_bits} bits"
            )
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ec_curves:
            return f"key is EC on curve {public_key.curve.name}, which is not allowed ({allowed})"
        return None
    key_type, _ = key_description(public_key)
    return f"key type {key_type} is not accepted by the CA ({allowed})"


def load_private_key(key_pem: bytes, passphrase: bytes | None = None) -> PrivateKeyTypes:
    """A private key from PEM or DER, unencrypted or under `passphrase`; refusals name what
    was given instead."""
    labels = PEM_LABEL.findall(key_pem)
    is_pem = bool(labels)
    if is_pem and not any(is_private_key_label(label) for label in labels):
        raise _not_a_key(key_pem)
    load = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        try:
            return load(key_pem, password=None)
        except TypeError:
            if passphrase is None:
                raise
            return load(key_pem, password=passphrase)
    except TypeError:
        raise CertificateError(
            "the private key is encrypted with a passphrase: ask the systems team for the "
            "unencrypted key, or decrypt it first with "
            "'openssl pkey -in <file> -out <file>.plain' and give that file (never send the "
            "passphrase in a ticket)"
        ) from None
    except ValueError:
        if is_pem:
            raise CertificateError(
                "the key file holds a PEM private key block that cannot be read: it is "
                "damaged, truncated or of a kind not used for TLS (e.g. an OpenSSH key); "
                "ask the systems team to attach the .key file again"
            ) from None
        raise _not_a_key(key_pem) from None
    except UnsupportedAlgorithm:
        raise CertificateError(
            "the private key uses an algorithm this tool cannot read: ask the systems team "
            "for an RSA or EC key in PEM (PKCS#8) form"
        ) from None


def _not_a_key(data: bytes) -> CertificateError:
    return CertificateError(
        f"the key file is not a private key: it is {describe_file(data)}; ask the systems "
        "team for the .key file generated together with the CSR"
    )


def check_key_matches_csr(key_pem: bytes, csr_pem: bytes, passphrase: bytes | None = None) -> str:
    """The shared public-key fingerprint, once the key is shown to belong to the CSR."""
    key = load_private_key(key_pem, passphrase)
    key_fingerprint = public_key_fingerprint(key.public_key())
    csr_fingerprint = public_key_fingerprint(_public_key(load_csr(csr_pem)))
    if key_fingerprint != csr_fingerprint:
        raise CertificateError(
            "the private key does not belong to the CSR (public key fingerprints differ: "
            f"key {key_fingerprint[:16]}…, CSR {csr_fingerprint[:16]}…): ask the systems team "
            "for the key generated together with that CSR, or for a new pair"
        )
    return key_fingerprint


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else value


def _dns_fold(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _shown(value: str | None) -> str:
    return "missing" if value is None else f"'{value}'"
