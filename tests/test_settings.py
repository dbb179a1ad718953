"""Settings from the environment and .env: clear errors that name the variable, no leaks."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr, ValidationError

from embargo_bot.domain.errors import ConfigError
from embargo_bot.domain.transport import SmtpSecurity, is_loopback
from embargo_bot.settings import Settings, load_settings

PASSWORD = "correct-horse-battery-staple"


# conftest.py's autouse fixture clears EMBARGO_BOT_* and moves to an empty folder.


def config_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **overrides)
    message = str(caught.value)
    assert message.startswith("invalid setting: ")
    return message


def test_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert isinstance(settings, Settings)
    assert settings.smtp_host == "localhost"
    assert settings.smtp_port == 587
    assert settings.smtp_security is SmtpSecurity.STARTTLS
    assert settings.smtp_password is None
    assert settings.zone == ZoneInfo("Europe/London")
    assert settings.sender_address == "embargo-bot@example.org"


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("EMBARGO_BOT_SMTP_HOST", "relay.gov.example", "smtp_host", "relay.gov.example"),
        ("EMBARGO_BOT_SMTP_PORT", "465", "smtp_port", 465),
        ("EMBARGO_BOT_SMTP_SECURITY", "tls", "smtp_security", SmtpSecurity.TLS),
        ("EMBARGO_BOT_SMTP_TIMEOUT", "12.5", "smtp_timeout", 12.5),
        ("EMBARGO_BOT_FROM", "Ops <ops@gov.example>", "sender", "Ops <ops@gov.example>"),
        ("EMBARGO_BOT_FROM", "Ops <ops@gov.example>", "sender_address", "ops@gov.example"),
        ("EMBARGO_BOT_TIMEZONE", "America/New_York", "zone", ZoneInfo("America/New_York")),
        ("EMBARGO_BOT_DATABASE", "/var/lib/eb.db", "database", "/var/lib/eb.db"),
        (
            "EMBARGO_BOT_DATABASE",
            "postgresql://embargo@/embargo?host=/run/postgresql",
            "database",
            "postgresql://embargo@/embargo?host=/run/postgresql",
        ),
    ],
)
def test_environment_is_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, attribute: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(_env_file=None), attribute) == expected


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("EMBARGO_BOT_SMTP_PORT", "0", "greater than or equal to 1"),
        ("EMBARGO_BOT_SMTP_PORT", "65536", "less than or equal to 65535"),
        ("EMBARGO_BOT_SMTP_PORT", "smtp", "valid integer"),
        ("EMBARGO_BOT_SMTP_PORT", "-25", "greater than or equal to 1"),
        ("EMBARGO_BOT_FROM", "not an address", "'not an address' is not an address"),
        ("EMBARGO_BOT_FROM", "Ops <ops@>", "is not an address"),
        ("EMBARGO_BOT_FROM", "Ops <ops@gov.example>\rBcc: x@evil.example", "control character U+"),
        ("EMBARGO_BOT_TIMEZONE", "Mars/Olympus", "'Mars/Olympus' is not a known time zone"),
        ("EMBARGO_BOT_TIMEZONE", "../../etc/passwd", "is not a known time zone"),
        ("EMBARGO_BOT_TIMEZONE", "BST", "is not a known time zone"),
        ("EMBARGO_BOT_SMTP_SECURITY", "plaintext", "'starttls', 'tls' or 'none'"),
        ("EMBARGO_BOT_SMTP_TIMEOUT", "0", "greater than 0"),
        ("EMBARGO_BOT_SMTP_CONNECTIONS", "33", "less than or equal to 32"),
        ("EMBARGO_BOT_SMTP_HOST", "relay\r\n.example", "control character U+"),
        ("EMBARGO_BOT_SMTP_USERNAME", "ops\nRCPT TO:<x@evil.example>", "control character U+"),
        ("EMBARGO_BOT_LEASE_SECONDS", "1", "greater than or equal to 5"),
    ],
)
def test_invalid_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    message = config_error()
    assert f"{variable}: " in message
    assert fragment in message


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"sender": "bad"}, "EMBARGO_BOT_FROM"),
        ({"smtp_port": 99999}, "EMBARGO_BOT_SMTP_PORT"),
        ({"timezone": "Europe/Lonodn"}, "EMBARGO_BOT_TIMEZONE"),
    ],
)
def test_invalid_override_names_the_variable(overrides: dict[str, object], variable: str) -> None:
    assert f"{variable}: " in config_error(**overrides)


def test_every_problem_is_reported() -> None:
    message = config_error(smtp_port=0, sender="bad", timezone="Nowhere/Land")
    for variable in ("EMBARGO_BOT_SMTP_PORT", "EMBARGO_BOT_FROM", "EMBARGO_BOT_TIMEZONE"):
        assert f"{variable}: " in message


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.53", "localhost", "LOCALHOST", "localhost.localdomain", "::1", "[::1]"],
)
def test_clear_text_allowed_on_loopback(host: str) -> None:
    settings = load_settings(_env_file=None, smtp_host=host, smtp_security="none")
    assert settings.smtp_security is SmtpSecurity.NONE
    assert settings.smtp_host == host


@pytest.mark.parametrize(
    "host",
    [
        "mail.gov.example",
        "10.0.0.25",
        "0.0.0.0",
        "::",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
    ],
)
def test_clear_text_refused_off_loopback(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("EMBARGO_BOT_SMTP_HOST", host)
    monkeypatch.setenv("EMBARGO_BOT_SMTP_SECURITY", "none")
    message = config_error()
    assert "EMBARGO_BOT_SMTP_SECURITY=none is only allowed for a loopback relay" in message
    assert repr(host) in message


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_encrypted_relay_may_be_anywhere(security: str) -> None:
    settings = load_settings(_env_file=None, smtp_host="mail.gov.example", smtp_security=security)
    assert settings.smtp_security == security


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("Localhost", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:10.0.0.1", False),
        ("128.0.0.1", False),
        ("0.0.0.0", False),
        ("mail.gov.example", False),
        ("localhost.gov.example", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


# --- .env -------------------------------------------------------------------------------------


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(dedent(text), encoding="utf-8")
    return path


def test_env_file_is_read_and_other_keys_ignored(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path,
        """\
        # relay for the press office
        EMBARGO_BOT_SMTP_HOST=relay.gov.example
        EMBARGO_BOT_SMTP_PORT=465
        EMBARGO_BOT_SMTP_SECURITY=tls
        EMBARGO_BOT_FROM="Press Office <press@gov.example>"
        OTHER_TOOL_TOKEN=abc123
        DATABASE_URL=postgres://elsewhere
        EMBARGO_BOT_NO_SUCH_SETTING=1
        """,
    )
    settings = load_settings(_env_file=env_file)
    assert settings.smtp_host == "relay.gov.example"
    assert settings.smtp_port == 465
    assert settings.smtp_security is SmtpSecurity.TLS
    assert settings.sender_address == "press@gov.example"
    dumped = settings.model_dump()
    assert set(dumped) == set(Settings.model_fields)
    assert "abc123" not in repr(settings)
    # The database setting is ours, not the unrelated DATABASE_URL.
    assert settings.database == "embargo-bot.db"


def test_env_file_is_the_default_in_the_working_folder(tmp_path: Path) -> None:
    write_env(tmp_path, "EMBARGO_BOT_SMTP_PORT=2525\n")
    assert load_settings().smtp_port == 2525


def test_environment_wins_over_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = write_env(tmp_path, "EMBARGO_BOT_SMTP_PORT=465\n")
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", "2525")
    assert load_settings(_env_file=env_file).smtp_port == 2525


def test_invalid_env_file_value_names_the_variable(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, "EMBARGO_BOT_TIMEZONE=Europe/Atlantis\n")
    with pytest.raises(ConfigError, match="EMBARGO_BOT_TIMEZONE: 'Europe/Atlantis' is not"):
        load_settings(_env_file=env_file)


# --- secrets ----------------------------------------------------------------------------------


def test_password_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("EMBARGO_BOT_KEY", "k" * 44)
    settings = load_settings(_env_file=None)
    assert isinstance(settings.smtp_password, SecretStr)
    assert settings.smtp_password.get_secret_value() == PASSWORD
    assert isinstance(settings.key, SecretStr)
    for shown in (repr(settings), str(settings), str(settings.smtp_password)):
        assert PASSWORD not in shown
        assert "k" * 44 not in shown


def test_password_from_env_file_is_secret(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, f"EMBARGO_BOT_SMTP_PASSWORD={PASSWORD}\n")
    settings = load_settings(_env_file=env_file)
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    "bad",
    [
        {"EMBARGO_BOT_SMTP_PORT": "0"},
        {"EMBARGO_BOT_FROM": "nobody"},
        {"EMBARGO_BOT_SMTP_HOST": "mail.gov.example", "EMBARGO_BOT_SMTP_SECURITY": "none"},
    ],
)
def test_password_is_not_in_config_error(
    monkeypatch: pytest.MonkeyPatch, bad: dict[str, str]
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PASSWORD", PASSWORD)
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    assert PASSWORD not in config_error()


def test_settings_are_frozen() -> None:
    settings = load_settings(_env_file=None)
    with pytest.raises(ValidationError):
        settings.smtp_port = 25
    assert settings.smtp_port == 587


def test_log_format_is_text_or_json() -> None:
    assert load_settings(_env_file=None, log_format="json").log_format == "json"
    assert load_settings(_env_file=None).log_format == "text"
    assert "EMBARGO_BOT_LOG_FORMAT: Input should be 'text' or 'json'" in config_error(
        log_format="xml"
    )
