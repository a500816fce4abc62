"""Which route serves each CA: `[ca_routes.<CA>]` sections, `[ca_request]` for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrenew.adapters.ca.portal import PortalRoute
from certrenew.adapters.wiring import renewal_context
from certrenew.config import AcmeRouteSettings, load_settings
from certrenew.errors import ConfigError

CSR = """
[csr]
organization = "O"
organizational_unit = "OU"
locality = "L"
state = "S"
country = "ES"
email = "a@example.cat"
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "certrenew.toml"
    path.write_text(CSR + text, encoding="utf-8")
    return path


def test_each_ca_gets_the_route_of_its_own_section(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
[renewal]
cas = ["CESICAT", "Other"]
[ca_routes.CESICAT]
kind = "portal"
portal = "Remedy"
section = "SSL"
fields = {"Common name" = "{domain}"}
[ca_request]
portal = "the CA's own portal"
section = "SSL"
fields = {"CN" = "{domain}"}
""",
        )
    )
    ctx = renewal_context(settings)
    assert isinstance(ctx.ca_route("CESICAT"), PortalRoute)
    assert ctx.ca_route("CESICAT").portal == "Remedy"
    assert ctx.ca_route("Other").portal == "the CA's own portal"


def test_a_configuration_with_only_ca_request_serves_every_ca_through_it(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
[renewal]
cas = ["CESICAT", "EACAT"]
[ca_request]
portal = "Remedy (CTTI)"
section = "SSL"
fields = {"CN" = "{domain}"}
""",
        )
    )
    ctx = renewal_context(settings)
    assert {ca: route.portal for ca, route in ctx.ca_routes.items()} == {
        "CESICAT": "Remedy (CTTI)",
        "EACAT": "Remedy (CTTI)",
    }


def test_a_ca_without_a_route_is_named_with_the_section_to_add(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[renewal]\ncas = ["CESICAT", "EACAT"]\n'))
    with pytest.raises(ConfigError, match=r"'CESICAT'.*\[ca_routes\.CESICAT\]"):
        renewal_context(settings)


def test_an_unknown_route_kind_is_refused_naming_the_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[renewal]\ncas = ["X"]\n[ca_routes.X]\nkind = "fax"\nportal = "p"\nsection = "s"\n'
        "fields = {}\n",
    )
    with pytest.raises(ConfigError, match=r"ca_routes\.X"):
        load_settings(path)


def test_the_shipped_example_routes_cesicat_through_remedy() -> None:
    example = Path(__file__).parent.parent / "examples" / "certrenew.toml"
    settings = load_settings(example)
    routes = renewal_context(settings).ca_routes
    assert set(routes) == set(settings.renewal.cas if settings.renewal else ())
    assert routes["CESICAT"].portal == "Remedy (CTTI)"


def test_secrets_of_routes_and_the_password_safe_are_refused_in_the_file(tmp_path: Path) -> None:
    for section, key in (("ca_routes.ACME", "eab_hmac_key"), ("password_safe", "master_password")):
        path = write(tmp_path, f'[{section}]\n{key} = "s3cret-value"\n')
        with pytest.raises(ConfigError, match=f"{key}_file") as refused:
            load_settings(path)
        assert "s3cret-value" not in str(refused.value)


def test_relative_paths_of_a_route_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[renewal]\ncas = ["ACME"]\n[ca_routes.ACME]\nkind = "acme"\n'
        'directory_url = "https://acme.example/dir"\naccount_key_file = "keys/account.key"\n'
        'webroot = "www"\n',
    )
    route = load_settings(path).ca_routes["ACME"]
    assert isinstance(route, AcmeRouteSettings)
    assert route.account_key_file == (tmp_path / "keys/account.key").resolve()
    assert route.webroot == (tmp_path / "www").resolve()
