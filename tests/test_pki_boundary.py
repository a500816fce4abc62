"""certrenew.pki stands alone: the rest of the project adapts to it, not the reverse.

These tests keep the boundary from creeping back: the library imports only the
standard library, `cryptography` and itself; its error reaches people through
the project's PERSON_FIXABLE; the configuration hands its CSR settings over as
plain SubjectRules.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from certrenew import errors
from certrenew.cli import CertRenewGroup
from certrenew.config import CsrSettings
from certrenew.lab.tls import build_csr
from certrenew.pki import errors as pki_errors
from certrenew.pki.csr import SubjectRules, check_csr
from tests.pki import DOMAIN

PKI = Path(__file__).resolve().parent.parent / "certrenew" / "pki"


def _imported_modules(path: Path) -> list[str]:
    """Every module a file imports, at any depth (function-level imports too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports (certrenew.pki...)"
            found.append(node.module or "")
    return found


@pytest.mark.parametrize("path", sorted(PKI.glob("*.py")), ids=lambda p: p.name)
def test_pki_imports_nothing_of_ours_outside_itself(path: Path) -> None:
    for module in _imported_modules(path):
        top = module.split(".")[0]
        allowed = (
            top in sys.stdlib_module_names
            or top == "cryptography"
            or module == "certrenew.pki"
            or module.startswith("certrenew.pki.")
        )
        assert allowed, f"{path.name} imports {module}: certrenew.pki must stand alone"


def test_certificate_error_is_the_pki_one_and_person_fixable() -> None:
    assert errors.CertificateError is pki_errors.CertificateError
    assert issubclass(errors.CertificateError, ValueError)
    assert errors.CertificateError in errors.PERSON_FIXABLE
    assert errors.CertRenewError in errors.PERSON_FIXABLE


def test_cli_prints_a_certificate_error_without_traceback() -> None:
    cli = typer.Typer(cls=CertRenewGroup)

    @cli.command()
    def check() -> None:
        raise errors.CertificateError("the CSR file is not a CSR: ask for the .csr file")

    @cli.command()
    def other() -> None:
        """A second command, so that `check` is a subcommand as in certrenew."""

    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 3
    assert result.stderr.strip() == "error: the CSR file is not a CSR: ask for the .csr file"


def _settings(**changes: object) -> CsrSettings:
    values: dict[str, object] = {
        "organization": "Consorci Administracio Oberta de Catalunya",
        "organizational_unit": "Area de Tecnologia",
        "locality": "Barcelona",
        "state": "Barcelona",
        "country": "ES",
        "email": "certificats@aoc.cat",
    }
    return CsrSettings.model_validate({**values, **changes})


def test_csr_settings_become_rules_field_by_field() -> None:
    settings = _settings(min_rsa_bits=3072, ec_curves=["secp384r1"])
    rules = settings.rules()
    assert isinstance(rules, SubjectRules)
    for field in dataclasses.fields(SubjectRules):
        expected = getattr(settings, field.name)
        if isinstance(expected, list):
            expected = tuple(expected)
        assert getattr(rules, field.name) == expected, field.name
    hash(rules)  # frozen and made of tuples: usable as a cache key


def test_defaults_agree_between_settings_and_rules() -> None:
    settings = _settings()
    plain = SubjectRules(
        organization=settings.organization,
        organizational_unit=settings.organizational_unit,
        locality=settings.locality,
        state=settings.state,
        country=settings.country,
        email=settings.email,
    )
    assert settings.rules() == plain


def test_lab_builds_csrs_from_settings_as_the_demo_does() -> None:
    settings = _settings()
    csr, _ = build_csr(settings, DOMAIN)
    assert check_csr(csr, settings.rules(), DOMAIN).domain == DOMAIN
