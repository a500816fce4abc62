"""The ACME route (RFC 8555): the CA issues and revokes with no person involved.

Sectigo and other CAs bind an ACME account to the organisation's account with
External Account Binding: the CA hands out a key id and an HMAC key, which
sign the account key once at registration. The account key is kept like any
other private key: in a file readable by its owner only, never in a flow
result, a log or a ticket. The challenge is published through a webroot
folder (http-01) or a hook command (http-01 or dns-01), and removed again
whatever happens.

The hook is called as `hook deploy|clean` with the challenge in the
environment: `CERTRENEW_ACME_DOMAIN`, `CERTRENEW_ACME_NAME` (the file path for
http-01, the TXT record name for dns-01) and `CERTRENEW_ACME_VALUE`.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import josepy
import requests
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certrenew.adapters.ca import CertificateOrder
from certrenew.config import AcmeRouteSettings
from certrenew.errors import CaError, ConfigError, ServiceUnavailable

SUPERSEDED = 4  # RFC 5280 CRLReason superseded
# Problem types (RFC 8555 6.7) that say "not now", not "no": the step waits and tries again.
BUSY = frozenset({"rateLimited", "serverInternal"})


class AcmeRoute:
    """AutomaticRoute for a CA that speaks ACME, with External Account Binding."""

    def __init__(self, settings: AcmeRouteSettings) -> None:
        self.settings = settings
        self._client: client.ClientV2 | None = None

    @property
    def portal(self) -> str:
        return self.settings.portal

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(self.settings.issuers)

    @property
    def generates_key(self) -> bool:
        """The flow makes the key and CSR itself; no CSR ticket for the systems team."""
        return self.settings.key == "generate"

    def request(self, order: CertificateOrder) -> str:
        with self._talking("filing the order"):
            acme = self._account()
            placed = acme.new_order(order.csr_pem.encode())
            with self._challenges_published(acme, placed):
                finalized = acme.poll_and_finalize(placed, self._deadline())
            return str(finalized.uri)

    def collect(self, reference: str) -> bytes:
        with self._talking("fetching the certificate"):
            acme = self._account()
            order = messages.OrderResource(uri=reference, body=messages.Order())
            return acme.poll_finalization(order, self._deadline()).fullchain_pem.encode()

    def revoke(self, certificate_pem: bytes) -> None:
        leaf = x509.load_pem_x509_certificates(certificate_pem)[0]
        with self._talking("revoking the old certificate"):
            self._account().revoke(leaf, SUPERSEDED)

    def _deadline(self) -> datetime.datetime:
        # The acme library compares with naive local time.
        return datetime.datetime.now() + datetime.timedelta(seconds=self.settings.timeout_seconds)

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """The CA's refusals and outages as messages a person can act on."""
        where = self.settings.directory_url
        try:
            yield
        except requests.exceptions.SSLError:
            raise CaError(
                f"the TLS certificate of the ACME server {where} is not trusted or names another "
                f"host while {doing}: set ca_bundle in the route's section to the CA bundle that "
                "signs it (a private CA), or fix directory_url, then resume"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServiceUnavailable(
                f"the ACME server {where} cannot be reached while {doing} ({type(exc).__name__})"
                ": check the network or the CA's status, then resume"
            ) from None
        except errors.ValidationError as exc:
            failed = "; ".join(
                f"{authz.body.identifier.value}: {_challenge_error(authz)}"
                for authz in exc.failed_authzrs
            )
            raise CaError(
                f"the ACME server {where} could not validate the challenge ({failed}): check "
                "that the webroot or hook publishes it where the CA looks, then resume"
            ) from None
        except messages.Error as exc:
            if exc.code in BUSY:
                raise ServiceUnavailable(
                    f"the ACME server {where} put off {doing} ({exc.code}: "
                    f"{exc.detail or exc.description}): the renewal waits; resume once the "
                    "CA's limit has reset or its outage is over"
                ) from None
            raise CaError(
                f"the ACME server {where} refused {doing}: {exc.detail or exc.typ}; "
                "check the route's settings (EAB key id and HMAC key, names), then resume"
            ) from None
        except errors.Error as exc:
            raise CaError(f"ACME {doing} at {where} failed: {exc}; resume to try again") from None

    def _account(self) -> client.ClientV2:
        """The client with its account registered (found again when it already exists)."""
        if self._client is not None:
            return self._client
        settings = self.settings
        key = josepy.JWKRSA(key=_account_key(settings.account_key_file))
        verify: Any = str(settings.ca_bundle) if settings.ca_bundle else True
        net = client.ClientNetwork(
            key,
            verify_ssl=verify,
            user_agent="certrenew",
            timeout=settings.request_timeout_seconds,  # type: ignore[arg-type]
        )
        directory = client.ClientV2.get_directory(settings.directory_url, net)
        acme = client.ClientV2(directory, net)
        binding: dict[str, Any] | None = None
        hmac_key = settings.secret_eab_hmac_key()
        if settings.eab_kid and hmac_key:
            binding = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(),
                kid=settings.eab_kid,
                hmac_key=hmac_key,
                directory=directory,
            )
        elif acme.external_account_required():
            raise CaError(
                f"the ACME server {settings.directory_url} requires External Account Binding: "
                "set eab_kid and eab_hmac_key_file in the route's section"
            )
        registration = messages.NewRegistration.from_data(
            email=settings.email,
            terms_of_service_agreed=True,
            external_account_binding=binding,
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as exc:
            net.account = messages.RegistrationResource(
                uri=exc.location, body=messages.Registration()
            )
        self._client = acme
        return acme

    @contextmanager
    def _challenges_published(
        self, acme: client.ClientV2, order: messages.OrderResource
    ) -> Iterator[None]:
        """Publish and answer each pending challenge; remove them all afterwards."""
        published: list[tuple[str, str, str]] = []
        key = acme.net.key
        assert key is not None  # set by _account
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue
                domain = authz.body.identifier.value
                challenge = self._pick(authz, domain)
                chall = challenge.chall
                if isinstance(chall, challenges.HTTP01):
                    name, value = chall.path, chall.validation(key)
                else:
                    dns = cast(challenges.DNS01, chall)
                    name, value = dns.validation_domain_name(domain), dns.validation(key)
                self._publish("deploy", domain, name, value)
                published.append((domain, name, value))
                acme.answer_challenge(challenge, chall.response(key))
            yield
        finally:
            for domain, name, value in published:
                self._publish("clean", domain, name, value)

    def _pick(self, authz: messages.AuthorizationResource, domain: str) -> messages.ChallengeBody:
        wanted = self.settings.challenge
        for challenge in authz.body.challenges:
            if challenge.chall.typ == wanted:
                return challenge
        offered = ", ".join(c.chall.typ for c in authz.body.challenges)
        raise CaError(
            f"the ACME server offers no {wanted} challenge for {domain} (it offers {offered}): "
            "change the route's challenge setting"
        )

    def _publish(self, action: str, domain: str, name: str, value: str) -> None:
        settings = self.settings
        if settings.hook:
            environment = {
                **os.environ,
                "CERTRENEW_ACME_DOMAIN": domain,
                "CERTRENEW_ACME_NAME": name,
                "CERTRENEW_ACME_VALUE": value,
            }
            done = subprocess.run(
                [*settings.hook, action], env=environment, capture_output=True, check=False
            )
            if done.returncode != 0 and action == "deploy":
                raise CaError(
                    f"the challenge hook {settings.hook[0]} failed for {domain} (exit "
                    f"{done.returncode}): {done.stderr.decode(errors='replace').strip()[:200]}"
                )
            return
        assert settings.webroot is not None
        path = settings.webroot / name.lstrip("/")
        if action == "deploy":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value, encoding="ascii")
        else:
            path.unlink(missing_ok=True)


def _challenge_error(authz: messages.AuthorizationResource) -> str:
    for challenge in authz.body.challenges:
        if challenge.error is not None:
            return str(challenge.error.detail or challenge.error.typ)
    return str(authz.body.status)


def _account_key(path: Path) -> rsa.RSAPrivateKey:
    """The account key from its file, made there (owner-only) on first use."""
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return key
    loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigError(f"the ACME account key {path} is not an RSA key: remove it to make one")
    return loaded
