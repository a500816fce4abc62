"""A local certificate lab: a throw-away CA and TLS servers on loopback.

The demo, the tests and the benchmark need real certificates served by real
TLS servers without touching any network but loopback, and the CSR and key the
systems team would attach to a ticket. Keys are generated at run time and live
in memory; a key reaches the disk only for the instant the `ssl` module needs a
file to load it, in a private temporary file.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Literal, Protocol, Self, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certrenew.pki.errors import CertificateError

KeyType = Literal["rsa", "ecdsa"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_EC_CURVES_BY_BITS: dict[int, ec.EllipticCurve] = {
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}


def new_key(key_type: KeyType = "ecdsa") -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class LeafCertificate:
    """A certificate with its private key and the chain above it (leaf first)."""

    certificate: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> Self:
        """From the files a renewal ends with: the `.crt` (maybe with its chain) and the `.key`."""
        certs = x509.load_pem_x509_certificates(cert_pem)
        key = serialization.load_pem_private_key(key_pem, None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("only RSA and ECDSA keys are supported")
        return cls(certs[0], key, tuple(certs[1:]))

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def chain_pem(self) -> bytes:
        return self.cert_pem + b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.chain
        )

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def pkcs12(self, password: str, name: str = "certificate") -> bytes:
        """A `.p12` as a CA portal hands it out: key, certificate and chain."""
        return pkcs12.serialize_key_and_certificates(
            name.encode(),
            self.key,
            self.certificate,
            list(self.chain) or None,
            serialization.BestAvailableEncryption(password.encode()),
        )


class LocalCA:
    """A certificate authority that exists only for the lifetime of this object."""

    def __init__(self, name: str = "certrenew lab CA", key_type: KeyType = "ecdsa") -> None:
        self.key = new_key(key_type)
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        sans: Iterable[str] | None = None,
        *,
        key_type: KeyType = "ecdsa",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        days: float = 90,
        self_signed: bool = False,
    ) -> LeafCertificate:
        """A server certificate; `not_after` may lie in the past (an expired certificate).

        SANs default to the common name. `days` counts from now when `not_after`
        is not given.
        """
        key = new_key(key_type)
        now = datetime.now(UTC)
        not_after = not_after or now + timedelta(days=days)
        not_before = not_before or min(now, not_after) - timedelta(days=1)
        names = list(sans) if sans is not None else [common_name]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        issuer, signer = (subject, key) if self_signed else (self.certificate.subject, self.key)
        certificate = self._sign(
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .not_valid_before(not_before)
            .not_valid_after(not_after),
            names,
            signer,
        )
        return LeafCertificate(certificate, key, () if self_signed else (self.certificate,))

    def sign_csr(self, csr_pem: bytes | str, days: int) -> bytes:
        """The `.crt` (PEM) a CA returns for a CSR: subject and SANs as requested."""
        data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
        csr = x509.load_pem_x509_csr(data)
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not match its public key")
        try:
            requested = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = [str(v) for v in requested.value.get_values_for_type(x509.DNSName)]
            names += [str(v) for v in requested.value.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            names = [str(cns[0].value)] if cns else []
        now = datetime.now(UTC)
        certificate = self._sign(
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days)),
            names,
            self.key,
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def _sign(
        builder: x509.CertificateBuilder, names: list[str], signer: PrivateKey
    ) -> x509.Certificate:
        builder = builder.serial_number(x509.random_serial_number()).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())


class CsrSubject(Protocol):
    """The organisation's subject fields a CSR carries besides the CN.

    Both the configuration's CsrSettings and certrenew.pki's SubjectRules have
    them, so the demo passes its settings and the tests their rules unchanged.
    """

    @property
    def organization(self) -> str: ...
    @property
    def organizational_unit(self) -> str: ...
    @property
    def locality(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def email(self) -> str: ...


def build_csr(
    subject: CsrSubject,
    domain: str,
    key: Literal["rsa", "ec"] = "rsa",
    bits: int = 2048,
) -> tuple[bytes, bytes]:
    """A CSR and its unencrypted PKCS#8 key, as the systems team would make them.

    The lab plays the systems team in the demo and the tests; a real renewal
    gets both files from people. For EC keys `bits` picks the curve: 256, 384
    or 521.
    """
    private_key: PrivateKey
    if key == "rsa":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        curve = _EC_CURVES_BY_BITS.get(bits)
        if curve is None:
            raise CertificateError(
                f"no EC curve has {bits} bits: use 256, 384 or 521 for an EC key"
            )
        private_key = ec.generate_private_key(curve)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, subject.country),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, subject.state),
            x509.NameAttribute(NameOID.LOCALITY_NAME, subject.locality),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject.organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, subject.organizational_unit),
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, subject.email),
        ]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(leaf: LeafCertificate) -> ssl.SSLContext:
    """A server-side context serving `leaf`; the key touches disk only while it loads."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="certrenew-lab-") as folder:
        cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_file, "wb") as out:
            out.write(leaf.chain_pem)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(leaf.key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


class _HoldOpen(asyncio.Protocol):
    """Serves nothing after the handshake; the client closes when it has the certificate."""

    def __init__(self, open_transports: set[asyncio.Transport]) -> None:
        self._open = open_transports
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol is always given a Transport; typeshed declares the hook once,
        # on BaseProtocol, with BaseTransport.
        stream = cast(asyncio.Transport, transport)
        self._transport = stream
        self._open.add(stream)

    def connection_lost(self, exc: Exception | None) -> None:
        self._open.discard(self._transport)

    def eof_received(self) -> bool:
        return False


class TLSServer:
    """A TLS server on loopback that serves one certificate, or one per SNI name.

    `certificate` is served when the client sends no SNI or an unknown name;
    `by_name` maps SNI names to their own certificates. `install()` replaces a
    served certificate while the server runs, as the systems team does when
    it installs a renewed certificate; new handshakes see it at once.
    The server runs an asyncio loop in its own thread.
    """

    def __init__(
        self,
        certificate: LeafCertificate,
        *,
        by_name: Mapping[str, LeafCertificate] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the lab serves on loopback only (127.0.0.1 or ::1)")
        self.host = host
        self.port = port
        self._default = server_context(certificate)
        self._by_name = {name.lower(): server_context(c) for name, c in (by_name or {}).items()}
        self._open: set[asyncio.Transport] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """`host:port` as the inventory writes it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def install(self, certificate: LeafCertificate, server_name: str | None = None) -> None:
        """Serve `certificate` from now on (for `server_name`, else as the default)."""
        context = server_context(certificate)
        if server_name is None:
            self._default = context
        else:
            self._by_name[server_name.lower()] = context

    def _choose(self, ssl_object: ssl.SSLObject, server_name: str | None, _: object) -> None:
        # Called for every ClientHello, with or without SNI: the listening
        # context only dispatches, so a replaced default is served at once too.
        ssl_object.context = self._by_name.get((server_name or "").lower(), self._default)

    def start(self) -> Self:
        listening = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        listening.sni_callback = self._choose
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, _context: None)  # clients abort on purpose
        self._server = loop.run_until_complete(
            loop.create_server(
                lambda: _HoldOpen(self._open),
                self.host,
                self.port,
                ssl=listening,
                ssl_handshake_timeout=10,
                backlog=1024,
            )
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"tls-server-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return

        def shut_down() -> None:
            server.close()
            for transport in list(self._open):
                transport.abort()
            loop.stop()

        loop.call_soon_threadsafe(shut_down)
        thread.join()
        loop.run_until_complete(server.wait_closed())
        loop.close()
        self._loop = self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
