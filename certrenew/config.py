"""Typed configuration: a TOML file plus CERTRENEW_* environment variables.

Organisation-specific values (CSR subject, projects, mailboxes, SharePoint
site and folders) have no defaults in code: the shipped example
(`examples/certrenew.toml`) carries the runbook's values. Secrets come from the
environment or from files named in the TOML, never from the TOML itself, so a
configuration file can be committed and shared without leaking anything.

Precedence: environment (`CERTRENEW_<KEY>`, `CERTRENEW_<SECTION>__<KEY>`) over
the TOML file over the defaults below. A list may be given in the environment
as JSON (`["CESICAT", "EACAT"]`) or as plain comma-separated text
(`CESICAT,EACAT`); every other problem with a value is one line naming the
setting and where it came from. Numbers are finite (TOML's `inf` would make a
timeout that never ends) and never booleans.
"""

from __future__ import annotations

import json
import os
import tomllib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from certrenew.errors import ConfigError
from certrenew.input_checks import PersonWritten, read_text

if TYPE_CHECKING:
    from certrenew.pki.csr import SubjectRules

CONFIG_ENV = "CERTRENEW_CONFIG"

# Keys that hold secrets: accepted from the environment only. A TOML file
# names a file holding the secret instead (`<key>_file`).
SECRET_KEYS = frozenset(
    {"token", "password", "cert_password", "key_passphrase", "eab_hmac_key", "master_password"}
)
# No single wait (a scan target, a request) is worth more than an hour.
MAX_TIMEOUT_SECONDS = 3600
# A certificate, CSR, key or .p12 is a few KiB; a ticket attachment the renewal
# reads is refused above this, so a stray video cannot fill the memory.
DEFAULT_MAX_ATTACHMENT_BYTES = 1024 * 1024


class Section(PersonWritten, BaseModel):  # BaseModel named for linters that look no further
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScanSettings(Section):
    """How hard the scan pushes: bounded concurrency, per-target time limit."""

    concurrency: int = Field(64, ge=1, le=4096)
    timeout_seconds: float = Field(
        10.0, gt=0, le=MAX_TIMEOUT_SECONDS, description="connect + TLS handshake"
    )


class CsrSettings(Section):
    """The subject every CSR must carry (CN is always the renewed domain)."""

    organization: str
    organizational_unit: str
    locality: str
    state: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    email: str
    min_rsa_bits: int = Field(2048, ge=2048)
    ec_curves: list[str] = ["secp256r1", "secp384r1"]

    def rules(self) -> SubjectRules:
        """These settings as the plain rules certrenew.pki checks CSRs against.

        The certificate library knows no configuration system, so the
        validated settings are handed over as values.
        """
        from certrenew.pki.csr import SubjectRules  # loads cryptography only when checking CSRs

        return SubjectRules(
            organization=self.organization,
            organizational_unit=self.organizational_unit,
            locality=self.locality,
            state=self.state,
            country=self.country,
            email=self.email,
            min_rsa_bits=self.min_rsa_bits,
            ec_curves=tuple(self.ec_curves),
        )


class TicketChainSettings(Section):
    """The shape of the renewal's ticket chain, the same on every tracker.

    Which project each ticket opens in, its issue type, how the tickets are
    linked and what happens to the key attachment once archived: the local
    tracker reads these too, so a chain looks the same on either tracker.
    """

    csr_project: str = "SIS"
    owner_project: str = "ST"
    install_project: str = "SIS"
    issue_type: str = "Task"
    link_type: str = "Relates"
    labels: list[str] = Field([], description="added to every ticket the renewal opens")
    delete_key_attachment: bool = True
    max_attachment_bytes: int = Field(
        DEFAULT_MAX_ATTACHMENT_BYTES,
        ge=16 * 1024,
        le=1024 * 1024 * 1024,
        description="larger ticket attachments are refused, not read",
    )


# Keys that moved from [jira] to [tickets]; still read from [jira], with a warning.
MOVED_TO_TICKETS = frozenset(TicketChainSettings.model_fields) - {"max_attachment_bytes"}


class JiraSettings(Section):
    """How to reach Jira and what its screens need; the chain's shape is [tickets]."""

    url: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    done_transition: str = "Done"
    # Fields the done transition's screen requires, e.g. {resolution = {name = "Done"}}.
    done_fields: dict[str, Any] = {}
    components: list[str] = []
    custom_fields: dict[str, Any] = {}
    ca_bundle: Path | None = None
    timeout_seconds: float = Field(30.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    # Throttling (429), outages (5xx) and network errors: each operation is retried
    # this many times, waiting Retry-After or a doubling delay (at most the maximum);
    # then the step gets ServiceUnavailable and the flow waits, keeping its state.
    retry_attempts: int = Field(4, ge=0, le=20)
    retry_base_delay_seconds: float = Field(1.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    retry_max_delay_seconds: float = Field(60.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    # How far Jira's search may lag behind a write. When the answer to a create is
    # lost, the label search is repeated until this long after the request's timeout
    # before the ticket is opened again: exactly once holds for any lag up to it.
    search_lag_seconds: float = Field(60.0, ge=0, le=3600)

    def secret_token(self) -> str | None:
        return read_secret(self.token, self.token_file, "jira.token")

    def secret_password(self) -> str | None:
        return read_secret(self.password, self.password_file, "jira.password")


class SharePointSettings(Section):
    """SharePoint document library reached with an app-only certificate credential."""

    site_url: str | None = None
    library: str | None = None
    root_folder: str = "CERTIFICATS/CDS"
    tenant_id: str | None = None
    authority: str | None = None
    client_id: str | None = None
    cert_path: Path | None = None
    cert_password: SecretStr | None = None
    cert_password_file: Path | None = None
    ca_bundle: Path | None = None
    chunk_size: int = Field(4 * 1024 * 1024, ge=1024)
    on_conflict: Literal["keep_old", "refuse"] = "keep_old"
    key_passphrase: SecretStr | None = None
    key_passphrase_file: Path | None = None
    key_passphrase_hint: str | None = Field(
        None, description="where people find the key passphrase; quoted in the install ticket"
    )
    # Throttling (429) and outages (503, dropped connections): each request is
    # retried this many times, waiting Retry-After (capped) or a doubling delay;
    # then the step gets ServiceUnavailable and the flow waits, keeping its state.
    retry_attempts: int = Field(6, ge=1, le=20)
    retry_max_delay_seconds: float = Field(60.0, ge=0, le=MAX_TIMEOUT_SECONDS)
    timeout_seconds: float = Field(
        60.0, gt=0, le=MAX_TIMEOUT_SECONDS, description="per request, after connecting"
    )

    def authority_url(self) -> str | None:
        if self.authority:
            return self.authority
        if self.tenant_id:
            return f"https://login.microsoftonline.com/{self.tenant_id}"
        return None

    def secret_cert_password(self) -> str | None:
        return read_secret(self.cert_password, self.cert_password_file, "sharepoint.cert_password")

    def secret_key_passphrase(self) -> str | None:
        return read_secret(
            self.key_passphrase, self.key_passphrase_file, "sharepoint.key_passphrase"
        )


class LocalArchiveSettings(Section):
    """A folder on this machine that mirrors the SharePoint layout."""

    path: Path | None = Field(None, description="default: <data_dir>/archive")
    root_folder: str = "CERTIFICATS/CDS"


class CaRequestSettings(Section):
    """The CA portal form (CESICAT via Remedy in the runbook): every value ready to copy.

    `{domain}` in a value is replaced by the renewed domain. As `[ca_request]`
    it is the route of every CA without a `[ca_routes.<CA>]` section of its own.
    """

    portal: str
    section: str
    fields: dict[str, str]
    issuers: list[str] = Field(
        [],
        description="words one of which a certificate's issuer from this CA names (e.g. "
        "'Sectigo'); a certificate from another issuer is refused at step 4. Empty: any issuer",
    )


class PortalRouteSettings(CaRequestSettings):
    """`[ca_routes.<CA>] kind = "portal"`: a person files the request in the CA's web form."""

    kind: Literal["portal"] = "portal"


class AcmeRouteSettings(Section):
    """`[ca_routes.<CA>] kind = "acme"`: the CA speaks ACME (RFC 8555), no person involved.

    The account is bound to the organisation's account at the CA with External
    Account Binding (key id and HMAC key from the CA); the account key lives in
    `account_key_file` (made on first use, readable by the owner only).
    """

    kind: Literal["acme"]
    directory_url: str
    issuers: list[str] = Field(
        [],
        description="words one of which a certificate's issuer from this CA names (e.g. "
        "'Sectigo'); a certificate from another issuer is refused at step 4. Empty: any issuer",
    )
    account_key_file: Path
    email: str | None = Field(None, description="contact for the ACME account")
    eab_kid: str | None = None
    # A file only: the environment cannot address a section named after a CA
    # (its variable names are folded to lower case).
    eab_hmac_key_file: Path | None = None
    challenge: Literal["http-01", "dns-01"] = "http-01"
    webroot: Path | None = Field(
        None, description="http-01: the folder served as http://<domain>/ by the web server"
    )
    hook: list[str] = Field(
        [], description="command that publishes (deploy) and removes (clean) a challenge"
    )
    key: Literal["generate", "csr"] = Field(
        "generate",
        description="generate: the flow makes the key (straight to the archive); "
        "csr: the systems team's CSR and key, as on other routes",
    )
    ca_bundle: Path | None = Field(None, description="CA bundle for a CA behind a private CA")
    timeout_seconds: float = Field(
        300, gt=0, le=MAX_TIMEOUT_SECONDS, description="validation and issuance, at most"
    )
    request_timeout_seconds: float = Field(
        45, gt=0, le=MAX_TIMEOUT_SECONDS, description="each request to the ACME server, at most"
    )

    @property
    def portal(self) -> str:
        return f"ACME ({self.directory_url})"

    def secret_eab_hmac_key(self) -> str | None:
        return read_secret(None, self.eab_hmac_key_file, "eab_hmac_key")

    @model_validator(mode="after")
    def _challenge_has_a_way(self) -> AcmeRouteSettings:
        if self.challenge == "dns-01" and not self.hook:
            raise ValueError("dns-01 needs a hook command that publishes the TXT record")
        if self.challenge == "http-01" and not (self.webroot or self.hook):
            raise ValueError("http-01 needs a webroot folder or a hook command")
        return self


class P12RouteSettings(CaRequestSettings):
    """`[ca_routes.<CA>] kind = "p12"`: the CA hands out a `.p12` with its key and a password.

    EACAT/Firmaprofessional in the runbook: a person requests the certificate at
    the subscriber portal (the form values, as for a portal route), downloads the
    `.p12` and gives it to the flow with its password. The `.p12` is archived
    under the root folder of its certificate kind (the inventory's
    `certificate_kind`), and the password goes to the password safe only.
    """

    kind: Literal["p12"]
    max_lifetime_days: int | None = Field(
        None, ge=1, description="longest lifetime accepted on this route (default: [renewal])"
    )
    folders: dict[str, str] = Field(
        min_length=1, description="archive root folder per certificate kind, e.g. seal = ..."
    )


# One section per CA route; `kind` says which module serves it (certrenew.adapters.ca).
CaRouteSettings = Annotated[
    PortalRouteSettings | AcmeRouteSettings | P12RouteSettings, Field(discriminator="kind")
]


class PasswordSafeSettings(Section):
    """The team's password safe: a KeePass (KDBX4) database, for the passwords of `.p12` files.

    The master password comes from the environment
    (`CERTRENEW_PASSWORD_SAFE__MASTER_PASSWORD`) or `master_password_file`; a key
    file may be used with it or instead. `title` may use `{domain}`, `{kind}`
    (the certificate kind) and `{ca}`.
    """

    path: Path | None = None
    master_password: SecretStr | None = None
    master_password_file: Path | None = None
    key_file: Path | None = None
    group: str = "Certificats"
    title: str = "{domain} ({kind}, {ca})"

    def secret_master_password(self) -> str | None:
        return read_secret(
            self.master_password, self.master_password_file, "password_safe.master_password"
        )


class RenewalSettings(Section):
    """How the renewal waits for people and machines."""

    cas: list[str] = Field(min_length=1, description="choices offered for the CA question")
    max_lifetime_days: int = Field(200, ge=1, description="longest certificate lifetime accepted")
    attachment_poll_seconds: float = Field(10, gt=0)
    attachment_poll_minutes: float = Field(
        2, ge=0, description="how long to poll a ticket before asking a person"
    )
    verify_poll_seconds: float = Field(30, gt=0, description="first delay; doubles up to 10 min")
    verify_poll_minutes: float = Field(
        30, ge=0, description="how long to poll endpoints before asking a person"
    )
    warm_wait_seconds: float = Field(
        120,
        ge=0,
        description="how long a run's process stays after asking a question, so an answer "
        "within it goes on at once; then the run waits without a process (0: at once)",
    )
    warm_wait_runs: int = Field(
        4,
        ge=0,
        description="most runs waiting so at once (each holds a process slot of certrenew "
        "serve); a question asked beyond them suspends at once",
    )
    flow_ui_url: str | None = Field(
        None, description="Prefect UI base URL for links in tickets (default: PREFECT_UI_URL)"
    )


class RolesSettings(Section):
    """Who may answer which step (second source: certificate and workflow managers).

    Empty lists let anyone answer, as in the demo. The open-source Prefect
    server has no user accounts: a login typed in a form is checked against
    these lists (and, on Jira, against Jira's active users), not proven.
    """

    certificate_managers: list[str] = Field(
        [], description="logins that may answer renewal steps and confirm retirement"
    )
    workflow_managers: list[str] = Field(
        [], description="logins that may approve the urgent channel"
    )


class SmtpSettings(Section):
    """The mail relay notices are sent through; the password comes from the environment."""

    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="default: 587, 465 for tls, 25")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="STARTTLS on a plain connection, or TLS from the first byte"
    )
    sender: str = Field(min_length=3, description="the From address")
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    timeout_seconds: float = Field(30.0, gt=0, le=MAX_TIMEOUT_SECONDS)

    def secret_password(self) -> str | None:
        return read_secret(self.password, self.password_file, "notices.smtp.password")


class WebhookSettings(Section):
    """A URL that takes each notice as a JSON POST (a Teams/Slack relay, a ticketing inbox)."""

    url: str = Field(pattern=r"^https?://[^/?#]+")
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout_seconds: float = Field(30.0, gt=0, le=MAX_TIMEOUT_SECONDS)

    def secret_token(self) -> str | None:
        return read_secret(self.token, self.token_file, "notices.webhook.token")


NoticeKind = Literal["expiry", "revocation", "escalation"]


class NoticeSettings(Section):
    """Who gets which notice, and the channels that carry them beside the outbox.

    The outbox always records every notice; `smtp` and `webhook`, when set,
    deliver them. The team mailbox (`recipients`) gets every notice, the
    certificate's owner (the inventory's `owner_email`) the kinds in
    `to_owner`, and the workflow managers (`managers`) the escalations.
    """

    recipients: list[str] = Field([], description="the team mailbox: every notice")
    managers: list[str] = Field([], description="the workflow managers' mailboxes: escalations")
    to_owner: list[NoticeKind] = Field(
        ["expiry", "revocation", "escalation"],
        description="notice kinds also sent to the certificate's owner_email",
    )
    outbox: Path | None = Field(None, description="default: <data_dir>/outbox")
    smtp: SmtpSettings | None = None
    webhook: WebhookSettings | None = None

    def recipients_for(self, kind: NoticeKind, owner_email: str | None) -> tuple[str, ...]:
        """The team, the owner where known and wanted, the managers for escalations; once each."""
        chosen = list(self.recipients)
        if owner_email and kind in self.to_owner:
            chosen.append(owner_email)
        if kind == "escalation":
            chosen += self.managers
        return tuple(dict.fromkeys(address.strip() for address in chosen if address.strip()))


class IntakeSettings(Section):
    """`certrenew serve`'s HTTP port: monitors' alerts in, Prometheus metrics out.

    Loopback by default: put it behind the organisation's reverse proxy, or set
    `address` to listen elsewhere. Alerts need the bearer token (`token` from
    the environment, or `token_file`); without one, every alert is refused.
    """

    address: str = "127.0.0.1"
    port: int = Field(9717, ge=0, le=65535, description="0: no HTTP port")
    token: SecretStr | None = None
    token_file: Path | None = None
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="larger alert bodies get 413")
    probe_interval_seconds: float = Field(
        300, gt=0, description="how often the certificates are read for the metrics"
    )

    def secret_token(self) -> str | None:
        return read_secret(self.token, self.token_file, "intake.token")


class RecoverySettings(Section):
    """How a renewal run whose process died is noticed and carried on.

    `certrenew serve` runs every renewal with heartbeats every
    `heartbeat_seconds` and installs two automations on the Prefect server: a
    run silent for `missed_heartbeats` heartbeats is marked Crashed, and a
    crashed renewal run is scheduled again, to replay its stored steps. A run
    that crashed more than `max_retries` times within `retry_window_hours`
    waits for a person instead of going on (certrenew.tasks.crashes).
    """

    enabled: bool = True
    heartbeat_seconds: int = Field(
        60, ge=30, description="how often a running renewal tells the server it is alive"
    )
    missed_heartbeats: int = Field(
        3, ge=2, description="a run silent this many heartbeats is taken for crashed"
    )
    outage_retry_seconds: float = Field(
        300,
        ge=0,
        le=86400,
        description="a step waiting because its system was away (down, slow, throttling) is "
        "tried again by `certrenew serve` after this long, then after twice, four and eight "
        "times as long; 0: only when a person submits the form",
    )
    max_retries: int = Field(
        3,
        ge=0,
        description="crashes of one renewal run within `retry_window_hours` that it is "
        "retried after by itself; after one more it waits for a person",
    )
    retry_window_hours: float = Field(
        24, gt=0, le=24 * 365, description="the window `max_retries` counts crashes in"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CERTRENEW_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    inventory: Path = Path("inventory.yaml")
    data_dir: Path = Path(".certrenew")
    tracker: Literal["local", "jira"] = "local"
    archive: Literal["local", "sharepoint"] = "local"
    scan: ScanSettings = ScanSettings()
    csr: CsrSettings | None = None
    tickets: TicketChainSettings = TicketChainSettings()
    jira: JiraSettings = JiraSettings()
    sharepoint: SharePointSettings = SharePointSettings()
    local_archive: LocalArchiveSettings = LocalArchiveSettings()
    ca_request: CaRequestSettings | None = None
    ca_routes: dict[str, CaRouteSettings] = {}
    password_safe: PasswordSafeSettings = PasswordSafeSettings()
    renewal: RenewalSettings | None = None
    notices: NoticeSettings = NoticeSettings()
    roles: RolesSettings = RolesSettings()
    intake: IntakeSettings = IntakeSettings()
    recovery: RecoverySettings = RecoverySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments; the environment wins over it.
        return (_Environment(settings_cls), init_settings)

    @model_validator(mode="before")
    @classmethod
    def _read_moved_jira_keys(cls, data: Any) -> Any:
        """Configuration files written before [tickets] existed keep working, with a warning."""
        if not isinstance(data, dict) or not isinstance(data.get("jira"), dict):
            return data
        moved = {key: value for key, value in data["jira"].items() if key in MOVED_TO_TICKETS}
        if not moved:
            return data
        tickets = data.get("tickets")
        tickets = dict(tickets) if isinstance(tickets, dict) else {}
        warnings.warn(
            "the ticket chain's shape moved from [jira] to [tickets]: move "
            + ", ".join(f"jira.{key}" for key in sorted(moved))
            + " to [tickets] (a value set in [tickets] wins)",
            FutureWarning,
            stacklevel=2,
        )
        jira = {key: value for key, value in data["jira"].items() if key not in MOVED_TO_TICKETS}
        return {**data, "jira": jira, "tickets": {**moved, **tickets}}

    def local_archive_path(self) -> Path:
        return self.local_archive.path or self.data_dir / "archive"

    def outbox_path(self) -> Path:
        return self.notices.outbox or self.data_dir / "outbox"

    def for_renewal(self) -> tuple[CsrSettings, dict[str, CaRouteSettings], RenewalSettings]:
        """The sections a renewal cannot do without, or one message naming what is missing.

        Every CA offered in `[renewal] cas` needs a route: its own
        `[ca_routes.<CA>]` section, else the `[ca_request]` portal form.
        """
        missing = [
            name for name, value in (("csr", self.csr), ("renewal", self.renewal)) if value is None
        ]
        if missing:
            raise ConfigError(
                f"the configuration has no [{'], ['.join(missing)}] section: renewals need it; "
                "copy it from examples/certrenew.toml"
            )
        assert self.csr and self.renewal
        routes: dict[str, CaRouteSettings] = {}
        for ca in self.renewal.cas:
            if ca in self.ca_routes:
                routes[ca] = self.ca_routes[ca]
            elif self.ca_request is not None:
                routes[ca] = PortalRouteSettings(**self.ca_request.model_dump(), kind="portal")
            else:
                raise ConfigError(
                    f"the CA '{ca}' offered in [renewal] cas has no route: add a "
                    f"[ca_routes.{ca}] section (see examples/certrenew.toml) or a [ca_request] "
                    "portal form used by every CA without one"
                )
        return self.csr, routes, self.renewal


class _Environment(EnvSettingsSource):
    """CERTRENEW_* variables, where a list may also be plain comma-separated text.

    pydantic-settings reads a list or a table from the environment as JSON
    only, and a plain `CERTRENEW_RENEWAL__CAS=CESICAT` broke every command
    with its traceback.
    """

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError as exc:
            if field is not None and get_origin(field.annotation) is list:
                return [item.strip() for item in str(value).split(",") if item.strip()]
            variables = _variables_for(field_name)
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ConfigError(
                f"environment: {' or '.join(variables) or field_name.upper()} is not valid JSON "
                f'({reason}): write a table as JSON (\'{{"key": "value"}}\') or set its keys '
                "one by one (CERTRENEW_<SECTION>__<KEY>)"
            ) from None


def _variables_for(field_name: str) -> list[str]:
    """The CERTRENEW_* variables set in the environment that end with this setting's name."""
    suffix = field_name.upper()
    return sorted(
        name
        for name in os.environ
        if name.upper().startswith("CERTRENEW_")
        and (name.upper() == f"CERTRENEW_{suffix}" or name.upper().endswith(f"__{suffix}"))
    )


def read_secret(value: SecretStr | None, file: Path | None, name: str) -> str | None:
    """A secret from its environment value, else from the file that holds it."""
    if value is not None:
        return value.get_secret_value()
    if file is None:
        return None
    return read_text(
        file,
        f"the file for {name}",
        ConfigError,
        f"fix {name}_file or set the secret in the environment",
    ).strip()


def _reject_secrets(data: dict[str, Any], path: Path, prefix: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _reject_secrets(value, path, f"{prefix}{key}.")
        elif key in SECRET_KEYS:
            parts = [*filter(None, prefix.split(".")), key]
            env = "CERTRENEW_" + "__".join(part.upper() for part in parts)
            raise ConfigError(
                f"{path}: '{prefix}{key}' is a secret and is not read from the configuration "
                f"file; remove it and set {env} in the environment, or name a file holding "
                f"it with '{prefix}{key}_file'"
            )


_PATH_KEYS = {
    (): ("inventory", "data_dir"),
    ("jira",): ("token_file", "password_file", "ca_bundle"),
    ("sharepoint",): ("cert_path", "cert_password_file", "ca_bundle", "key_passphrase_file"),
    ("local_archive",): ("path",),
    ("notices",): ("outbox",),
    ("notices", "smtp"): ("password_file",),
    ("notices", "webhook"): ("token_file",),
    ("intake",): ("token_file",),
    ("password_safe",): ("path", "master_password_file", "key_file"),
}


# Paths in any [ca_routes.<CA>] section.
_ROUTE_PATH_KEYS = ("account_key_file", "eab_hmac_key_file", "webroot", "ca_bundle")


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in the file are relative to the file, not to the caller's cwd."""
    for section, keys in _PATH_KEYS.items():
        node: Any = data
        for part in section:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for key in keys:
            if isinstance(node.get(key), str):
                node[key] = str((base / node[key]).resolve())
    routes = data.get("ca_routes")
    for route in routes.values() if isinstance(routes, dict) else ():
        for key in _ROUTE_PATH_KEYS:
            if isinstance(route, dict) and isinstance(route.get(key), str):
                route[key] = str((base / route[key]).resolve())


def config_path(explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def load_settings(config_file: Path | None = None) -> Settings:
    """Settings from `config_file`, else $CERTRENEW_CONFIG, else environment only."""
    path = config_path(config_file)
    data: dict[str, Any] = {}
    if path is not None:
        text = read_text(
            path, "configuration file", ConfigError, f"pass --config or set {CONFIG_ENV}"
        )
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        _reject_secrets(data, path)
        _resolve_paths(data, path.parent)
    try:
        return Settings(**data)
    except ValidationError as exc:
        where = str(path) if path else "environment"
        problems = "; ".join(
            f"{_setting_name(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: invalid configuration: {problems}") from None


def _setting_name(loc: tuple[Any, ...]) -> str:
    """`scan.concurrency`, plus the environment variable when that is where the value came from."""
    env = "CERTRENEW_" + "__".join(str(part).upper() for part in loc)
    name = ".".join(str(part) for part in loc)
    return f"{name} (from {env})" if env in os.environ else name
