"""App-only access tokens for SharePoint, from a certificate credential.

SharePoint's REST API refuses app-only tokens obtained with a client secret,
so the app proves itself with a certificate: msal signs a client assertion
with the private key and names the certificate by its SHA-1 thumbprint. We
build msal ourselves with `instance_discovery=False`, so the same code talks to
login.microsoftonline.com in production and to a local authority in tests.

msal reports refusals as dicts; `authentication_error` turns the ones a team
meets when going live into one message that names the setting to fix. Neither
the private key nor its password ever reaches a message or a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certrenew.errors import AuthenticationError, ConfigError

_KEY_BLOCK = re.compile(
    rb"-----BEGIN (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----.+?-----END (?:ENCRYPTED |RSA |EC )?"
    rb"PRIVATE KEY-----",
    re.DOTALL,
)

ENV = "CERTRENEW_SHAREPOINT__"


@dataclass(frozen=True)
class AppCertificate:
    """The app registration's certificate credential, as msal needs it."""

    thumbprint: str  # SHA-1 of the DER, hex: what Entra shows under "Certificates"
    not_after: datetime
    key_pem: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def credential(self) -> dict[str, str]:
        cred = {"private_key": self.key_pem, "thumbprint": self.thumbprint}
        if self.passphrase is not None:
            cred["passphrase"] = self.passphrase
        return cred


def load_app_certificate(path: Path, password: str | None) -> AppCertificate:
    """Read the PEM holding the app's certificate and private key; check they belong together."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read sharepoint.cert_path ({path}): {exc.strerror}; point "
            f"{ENV}CERT_PATH at the PEM holding the app's certificate and private key"
        ) from None
    match = _KEY_BLOCK.search(data)
    if match is None:
        raise ConfigError(
            f"sharepoint.cert_path ({path}) holds no private key: it must hold the app's "
            "certificate and its private key, both PEM"
        )
    secret = password.encode() if password is not None else None
    try:
        key = serialization.load_pem_private_key(match.group(0), secret)
    except TypeError:
        if password is None:
            raise ConfigError(
                f"the private key in {path} is encrypted: set {ENV}CERT_PASSWORD "
                "(or sharepoint.cert_password_file)"
            ) from None
        raise ConfigError(
            f"the private key in {path} is not encrypted: unset {ENV}CERT_PASSWORD"
        ) from None
    except ValueError:
        raise ConfigError(
            f"cannot decrypt the private key in {path}: the password in {ENV}CERT_PASSWORD "
            "(or sharepoint.cert_password_file) is wrong, or the key is damaged"
        ) from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(
            f"sharepoint.cert_path ({path}) holds no readable certificate: it must hold the "
            "app's certificate and its private key, both PEM"
        ) from None
    wanted = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for cert in certs:
        public = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if public == wanted:
            return AppCertificate(
                thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),
                not_after=cert.not_valid_after_utc,
                key_pem=match.group(0).decode("ascii"),
                passphrase=password,
            )
    raise ConfigError(
        f"no certificate in sharepoint.cert_path ({path}) matches its private key: "
        "put the app's certificate and its own key in the file"
    )


def site_scope(site_url: str) -> str:
    """`<origin>/.default`: SharePoint grants app-only tokens per tenant host, not per site."""
    parts = urlsplit(site_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


class AppTokenSource:
    """The token callback for `ClientContext.with_access_token`.

    msal is built on first use: constructing it fetches the authority's OpenID
    configuration, and wiring an archive should not touch the network.
    """

    def __init__(
        self,
        client_id: str,
        authority: str,
        certificate: AppCertificate,
        scope: str,
        http_client: requests.Session,
    ) -> None:
        self.client_id = client_id
        self.authority = authority
        self.certificate = certificate
        self.scope = scope
        self._http = http_client
        self._app: msal.ConfidentialClientApplication | None = None

    def __call__(self) -> dict[str, Any]:
        if self.certificate.not_after <= datetime.now(UTC):
            raise self._expired()
        result = self._msal().acquire_token_for_client(scopes=[self.scope])
        if "access_token" not in result:
            raise authentication_error(result, self)
        return {
            "access_token": result["access_token"],
            "token_type": result.get("token_type", "Bearer"),
            "expires_in": result.get("expires_in", 3599),
        }

    def _msal(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    authority=self.authority,
                    client_credential=self.certificate.credential(),
                    instance_discovery=False,
                    http_client=self._http,
                )
            except ValueError as exc:
                raise self._unusable_authority(str(exc)) from None
        return self._app

    def _unusable_authority(self, reason: str) -> AuthenticationError | ConfigError:
        if "authority configuration" in reason:
            return AuthenticationError(
                f"the authority {self.authority} does not know this tenant: check "
                f"{ENV}TENANT_ID (the directory id of your Microsoft 365 tenant) or "
                f"{ENV}AUTHORITY"
            )
        return ConfigError(
            f"sharepoint.authority {self.authority} is not usable ({reason.splitlines()[0]}); "
            f"set {ENV}TENANT_ID, or {ENV}AUTHORITY to https://login.microsoftonline.com/<tenant>"
        )

    def _expired(self) -> AuthenticationError:
        return AuthenticationError(
            f"the app certificate (thumbprint {self.certificate.thumbprint}) expired on "
            f"{self.certificate.not_after:%Y-%m-%d}: create a new one, upload its public part "
            f"to the app registration {self.client_id} and point {ENV}CERT_PATH at it"
        )


# Entra's AADSTS codes for the refusals a team meets when going live.
_UNKNOWN_TENANT = ("AADSTS90002", "AADSTS90023", "invalid_tenant")
_UNKNOWN_CLIENT = ("AADSTS700016",)
_BAD_ASSERTION = ("AADSTS700027", "AADSTS700023", "AADSTS50012")


def authentication_error(result: dict[str, Any], source: AppTokenSource) -> AuthenticationError:
    """One actionable message for msal's error dict; the raw description is only quoted by code."""
    error = str(result.get("error", "unknown_error"))
    description = str(result.get("error_description", ""))
    codes = [str(c) for c in result.get("error_codes", [])]
    tags = {error, *(f"AADSTS{c}" for c in codes), *re.findall(r"AADSTS\d+", description)}
    code = next((t for t in sorted(tags) if t.startswith("AADSTS")), error)
    thumbprint = source.certificate.thumbprint
    if tags & set(_UNKNOWN_TENANT):
        return AuthenticationError(
            f"the authority does not know tenant {source.authority} ({code}): check "
            f"{ENV}TENANT_ID or {ENV}AUTHORITY"
        )
    if tags & set(_UNKNOWN_CLIENT):
        return AuthenticationError(
            f"no app registration with client id {source.client_id} in this tenant ({code}): "
            f"check {ENV}CLIENT_ID (the registration's Application (client) ID) and "
            f"{ENV}TENANT_ID"
        )
    if tags & set(_BAD_ASSERTION) or error == "invalid_client":
        if "expired" in description.lower():
            return AuthenticationError(
                f"the app registration {source.client_id} holds certificate {thumbprint} only "
                f"as an expired credential ({code}): upload a new certificate to the "
                f"registration and point {ENV}CERT_PATH at it"
            )
        return AuthenticationError(
            f"the certificate {thumbprint} in {ENV}CERT_PATH is not registered on app "
            f"{source.client_id} ({code}): upload its public part under 'Certificates & "
            "secrets' of the app registration, or point CERT_PATH at the registered one"
        )
    return AuthenticationError(
        f"the authority {source.authority} refused a token for app {source.client_id} "
        f"({code}: {error}); check the app registration and {ENV}CLIENT_ID"
    )
