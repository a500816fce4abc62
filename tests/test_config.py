"""Configuration: TOML plus CERTRENEW_* environment, secrets only from the environment or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrenew.config import load_settings
from certrenew.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CERTRENEW_CONFIG",
        "CERTRENEW_JIRA__URL",
        "CERTRENEW_JIRA__TOKEN",
        "CERTRENEW_SCAN__CONCURRENCY",
        "CERTRENEW_SCAN__TIMEOUT_SECONDS",
        "CERTRENEW_INVENTORY",
    ):
        monkeypatch.delenv(name, raising=False)


def write(folder: Path, text: str) -> Path:
    path = folder / "certrenew.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_example_loads_with_the_runbook_values() -> None:
    example = Path(__file__).parent.parent / "examples" / "certrenew.toml"
    settings = load_settings(example)
    assert settings.scan.concurrency == 64 and settings.scan.timeout_seconds == 10
    assert settings.csr is not None and settings.csr.country == "ES"
    assert settings.inventory == (example.parent / "inventory.yaml").resolve()


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, '[jira]\nurl = "https://file.example"\n[scan]\nconcurrency = 8\n')
    monkeypatch.setenv("CERTRENEW_JIRA__URL", "https://jira.lab.test")
    monkeypatch.setenv("CERTRENEW_SCAN__TIMEOUT_SECONDS", "2.5")
    settings = load_settings(config)
    assert settings.jira.url == "https://jira.lab.test"
    assert settings.scan.timeout_seconds == 2.5
    assert settings.scan.concurrency == 8


def test_the_config_file_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTRENEW_CONFIG", str(write(tmp_path, 'inventory = "inv.yaml"\n')))
    assert load_settings().inventory == (tmp_path / "inv.yaml").resolve()


def test_a_secret_in_the_file_is_refused_and_not_repeated(tmp_path: Path) -> None:
    config = write(tmp_path, '[jira]\nurl = "https://j"\ntoken = "tok-123-secret"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "'jira.token' is a secret" in message
    assert "CERTRENEW_JIRA__TOKEN" in message and "jira.token_file" in message
    assert "tok-123-secret" not in message


def test_secrets_come_from_the_environment_or_a_file_and_stay_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("file-token-secret\n", encoding="utf-8")
    config = write(tmp_path, '[jira]\ntoken_file = "token"\n')
    assert load_settings(config).jira.secret_token() == "file-token-secret"
    monkeypatch.setenv("CERTRENEW_JIRA__TOKEN", "env-token-secret")
    settings = load_settings(config)
    assert settings.jira.secret_token() == "env-token-secret"
    assert "env-token-secret" not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[scan]\nconcurrency = 0\n", "invalid configuration: scan.concurrency: Input should be"),
        ("[scan]\nconcurrency = \n", "not valid TOML"),
        ("colour = 1\n", "invalid configuration: colour: Extra inputs are not permitted"),
    ],
)
def test_bad_values_name_the_file_and_the_setting(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value).startswith(f"{config}: ")
    assert expected in str(caught.value)


def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTRENEW_SCAN__CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match=r"scan.concurrency \(from CERTRENEW_SCAN__CONCURRENCY\)"):
        load_settings(write(tmp_path, ""))


def test_a_missing_config_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist: pass --config or set CERTRENEW_CONFIG"):
        load_settings(tmp_path / "none.toml")


def test_ticket_chain_keys_still_read_from_jira_with_a_warning(tmp_path: Path) -> None:
    """Files written when [jira] also held the chain's shape keep working."""
    config = write(
        tmp_path,
        '[jira]\nurl = "https://j"\ncsr_project = "CERT"\nlink_type = "Blocks"\n'
        '[tickets]\nlink_type = "Relates"\n',
    )
    with pytest.warns(FutureWarning, match=r"jira\.csr_project, jira\.link_type to \[tickets\]"):
        settings = load_settings(config)
    assert settings.tickets.csr_project == "CERT"
    assert settings.tickets.link_type == "Relates"  # the new section wins
    assert settings.jira.url == "https://j"


def test_ticket_chain_keys_from_the_old_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTRENEW_JIRA__OWNER_PROJECT", "SUPORT")
    with pytest.warns(FutureWarning, match="jira.owner_project"):
        settings = load_settings(write(tmp_path, ""))
    assert settings.tickets.owner_project == "SUPORT"


def test_the_new_section_needs_no_warning(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = load_settings(write(tmp_path, '[tickets]\nowner_project = "ST2"\n'))
    assert settings.tickets.owner_project == "ST2"


EXAMPLE = Path(__file__).parent.parent / "examples" / "certrenew.toml"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CESICAT", ["CESICAT"]),
        ("CESICAT, EACAT", ["CESICAT", "EACAT"]),
        ('["CESICAT", "EACAT"]', ["CESICAT", "EACAT"]),
    ],
)
def test_a_list_in_the_environment_may_be_plain_comma_separated_text(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("CERTRENEW_RENEWAL__CAS", value)
    monkeypatch.setenv("CERTRENEW_ROLES__CERTIFICATE_MANAGERS", value.lower())
    settings = load_settings(EXAMPLE)
    assert settings.renewal is not None and settings.renewal.cas == expected
    assert settings.roles.certificate_managers == [item.lower() for item in expected]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CERTRENEW_JIRA__DONE_FIELDS", "Done"), ("CERTRENEW_SCAN", "fast")],
)
def test_a_table_in_the_environment_that_is_not_json_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ""))
    assert str(caught.value).startswith(f"environment: {variable} is not valid JSON")
    assert "CERTRENEW_<SECTION>__<KEY>" in str(caught.value)


def test_the_command_line_takes_a_plain_list_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from certrenew.cli import app

    monkeypatch.setenv("CERTRENEW_RENEWAL__CAS", "CESICAT")
    result = CliRunner().invoke(app, ["config", "-c", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert '"cas": [\n      "CESICAT"\n    ]' in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[scan]\ntimeout_seconds = inf\n",
            "scan.timeout_seconds: Input should be a finite number",
        ),
        (
            "[scan]\ntimeout_seconds = nan\n",
            "scan.timeout_seconds: Input should be a finite number",
        ),
        ("[jira]\ntimeout_seconds = -inf\n", "jira.timeout_seconds: Input should be a finite"),
        ("[scan]\ntimeout_seconds = 1e300\n", "scan.timeout_seconds: Input should be less than"),
        ("[scan]\nconcurrency = true\n", "scan: concurrency: true is not a number"),
        ("[renewal]\ncas = ['X']\nmax_lifetime_days = false\n", "false is not a number"),
    ],
)
def test_numbers_are_finite_and_never_booleans(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert expected in str(caught.value)


def test_an_infinite_timeout_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTRENEW_SCAN__TIMEOUT_SECONDS", "inf")
    with pytest.raises(
        ConfigError, match=r"\(from CERTRENEW_SCAN__TIMEOUT_SECONDS\): Input should"
    ):
        load_settings(write(tmp_path, ""))


def test_a_configuration_file_that_is_a_folder_or_not_utf8_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^configuration file {tmp_path} is a folder"):
        load_settings(tmp_path)
    latin = tmp_path / "certrenew.toml"
    latin.write_bytes(b'[csr]\norganization = "Consorci d\'Administraci\xf3 Oberta"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(latin)
    assert str(caught.value) == (
        f"{latin}:2: configuration file is not UTF-8 text (byte 0xf3): save it as UTF-8"
    )


def test_a_secret_file_that_is_not_utf8_is_one_line_without_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_bytes(b"tok-secret-\xff\xfe")
    config = write(tmp_path, '[jira]\ntoken_file = "token"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config).jira.secret_token()
    message = str(caught.value)
    assert message == (
        f"{tmp_path / 'token'}:1: the file for jira.token is not UTF-8 text (byte 0xff): "
        "save it as UTF-8"
    )
