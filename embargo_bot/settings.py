"""Settings from the environment and ``.env``; the only place either is read.

Built once at the entry point and passed down, so no module reads the
environment at import time and tests build their own ``Settings``.
"""

from __future__ import annotations

import grp
import re
from datetime import timedelta
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from embargo_bot.domain.errors import ConfigError
from embargo_bot.domain.live_url import normalise_domains
from embargo_bot.domain.text_safety import header_problem
from embargo_bot.domain.transport import SmtpSecurity, is_loopback

ENV_PREFIX = "EMBARGO_BOT_"


class LogFormat(StrEnum):
    TEXT = "text"  # for people reading a terminal or journalctl
    JSON = "json"  # one JSON object per line, for log collectors


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """'4h', '30m', '90s', '250ms' or plain seconds; ISO 8601 ('PT4H') is left for pydantic."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        number, unit = match.groups()
        return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        raise ValueError(f"{value!r} is not a duration; use e.g. 4h, 30m, 90s or 250ms")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # .env may hold other tools' settings; only EMBARGO_BOT_* are ours.
        extra="ignore",
        # An empty line in .env ("EMBARGO_BOT_SMTP_CA_FILE=") means "not set", not "".
        env_ignore_empty=True,
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    smtp_host: str = "localhost"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    smtp_connections: Annotated[int, Field(ge=1, le=32)] = 4
    # Envelope recipients a message may carry; 1: a message per recipient. RFC 5321
    # 4.5.3.1.8 has relays take at least 100, and Microsoft 365 and Gmail cap at 100-500.
    smtp_max_recipients: Annotated[int, Field(ge=1, le=500)] = 1
    smtp_ca_file: Path | None = None
    smtp_allow_plaintext: bool = False
    sender: str = Field(
        default="Embargo Bot <embargo-bot@example.org>",
        validation_alias=f"{ENV_PREFIX}FROM",
    )
    # A SQLite file's path, or a PostgreSQL URL in libpq form (store.target reads it).
    database: Annotated[str, BeforeValidator(str)] = "embargo-bot.db"
    database_password: SecretStr | None = None
    recipients_dir: Path = Path("recipients")
    templates_dir: Path | None = None
    key: SecretStr | None = None
    smime_key: Path | None = None
    smime_cert: Path | None = None
    timezone: str = "Europe/London"
    smtp_rate: Annotated[int, Field(ge=1, le=100_000)] | None = None
    retry_for: Duration = timedelta(hours=4)
    retry_backoff: Duration = timedelta(seconds=30)
    live_within: Duration = timedelta(minutes=10)
    shared_group: str | None = None
    retain_days: Annotated[int, Field(ge=0, le=36500)] | None = None
    max_pdf_mb: Annotated[float, Field(gt=0, le=200)] = 25.0
    require_clearance: bool = True
    poll_interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 30.0
    live_domains: str | None = None
    # At the lift, the live email waits for the pack's page to answer (issue 12).
    link_check: bool = True
    link_wait: Duration = timedelta(minutes=30)
    link_ca_file: Path | None = None

    @field_validator("link_wait")
    @classmethod
    def _sensible_link_wait(cls, value: timedelta) -> timedelta:
        # Past a day the live email is no longer news; under a second there is no wait.
        if not timedelta(seconds=1) <= value <= timedelta(hours=24):
            raise ValueError("must be between 1s and 24h, e.g. 30m")
        return value

    @field_validator("link_ca_file")
    @classmethod
    def _readable_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file; point it at a PEM file or unset it")
        return value

    # Bounces: the envelope sender, and the mailbox the relay returns reports to.
    return_path: str | None = None
    return_path_verp: bool = False
    bounce_imap_host: str | None = None
    bounce_imap_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    bounce_imap_username: str | None = None
    bounce_imap_password: SecretStr | None = None
    bounce_imap_security: SmtpSecurity = SmtpSecurity.TLS
    bounce_imap_folder: str = "INBOX"
    bounce_imap_done_folder: str | None = None
    bounce_imap_ca_file: Path | None = None
    bounce_poll: Annotated[float, Field(ge=0.1, le=86400)] = 60.0

    @field_validator("live_domains")
    @classmethod
    def _domain_names(cls, value: str | None) -> str | None:
        if value is not None:
            _, problems = normalise_domains(value.split(","))
            if problems:
                raise ValueError(problems[0].removeprefix("EMBARGO_BOT_LIVE_DOMAINS: "))
        return value

    @property
    def live_domain_list(self) -> tuple[str, ...]:
        """The publishing sites a live URL must be on (or below); empty: any."""
        return tuple(normalise_domains((self.live_domains or "").split(","))[0])

    log_format: LogFormat = LogFormat.TEXT

    @field_validator("return_path")
    @classmethod
    def _return_path_is_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not a bare address like bounces@example.org") from exc
        return value

    @field_validator("bounce_imap_folder", "bounce_imap_done_folder")
    @classmethod
    def _printable_folder(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(not 32 <= ord(c) <= 126 for c in value)):
            raise ValueError(f"{value!r}: use a folder name in printable ASCII")
        return value

    @property
    def envelope_sender(self) -> str:
        """MAIL FROM of every message (the VERP base when VERP is on)."""
        return self.return_path or self.sender_address

    @property
    def bounce_imap_port_or_default(self) -> int:
        if self.bounce_imap_port is not None:
            return self.bounce_imap_port
        return 993 if self.bounce_imap_security is SmtpSecurity.TLS else 143

    @field_validator("smtp_username", "smtp_host", "sender", "bounce_imap_host")
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        if value is not None and (problem := header_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(
                f"{value!r} is not an address; "
                "use the form 'Organised Crime Unit <ocu@example.org>'"
            ) from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone; use e.g. Europe/London") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @field_validator("retry_for")
    @classmethod
    def _sensible_retry_window(cls, value: timedelta) -> timedelta:
        # Past two days a "live" link or an embargo notice is news nobody can use.
        if not timedelta(seconds=1) <= value <= timedelta(hours=48):
            raise ValueError("must be between 1s and 48h")
        return value

    @field_validator("retry_backoff")
    @classmethod
    def _sensible_backoff(cls, value: timedelta) -> timedelta:
        if not timedelta(milliseconds=50) <= value <= timedelta(minutes=30):
            raise ValueError("must be between 0.05s and 30m")
        return value

    @field_validator("shared_group")
    @classmethod
    def _known_group(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                grp.getgrnam(value)
            except KeyError as exc:
                raise ValueError(f"{value!r} is not a group on this machine") from exc
        return value

    @model_validator(mode="after")
    def _smime_key_and_certificate_together(self) -> Settings:
        if (self.smime_key is None) != (self.smime_cert is None):
            raise ValueError(
                "EMBARGO_BOT_SMIME_KEY and EMBARGO_BOT_SMIME_CERT go together: set both to sign "
                "every message, or neither"
            )
        return self

    @model_validator(mode="after")
    def _clear_text_only_on_loopback(self) -> Settings:
        if (
            self.smtp_security is SmtpSecurity.NONE
            and not is_loopback(self.smtp_host)
            and not self.smtp_allow_plaintext
        ):
            raise ValueError(
                f"EMBARGO_BOT_SMTP_SECURITY=none is only allowed for a loopback relay, "
                f"not {self.smtp_host!r}; use starttls or tls (or, knowing that embargoed "
                "material would cross the network in clear, EMBARGO_BOT_SMTP_ALLOW_PLAINTEXT=true)"
            )
        return self

    @model_validator(mode="after")
    def _verp_fits(self) -> Settings:
        if self.return_path_verp:
            _check_verp_base(self.envelope_sender)
        return self

    @model_validator(mode="after")
    def _bounce_mailbox_complete(self) -> Settings:
        host = self.bounce_imap_host
        if host is None:
            return self
        if self.bounce_imap_username is None or self.bounce_imap_password is None:
            raise ValueError(
                "EMBARGO_BOT_BOUNCE_IMAP_HOST is set: set EMBARGO_BOT_BOUNCE_IMAP_USERNAME and "
                "EMBARGO_BOT_BOUNCE_IMAP_PASSWORD too (or unset the host to read no bounces)"
            )
        if self.bounce_imap_security is SmtpSecurity.NONE and not is_loopback(host):
            raise ValueError(
                f"EMBARGO_BOT_BOUNCE_IMAP_SECURITY=none is only allowed for a loopback host, "
                f"not {host!r}: the login would cross the network in clear; use tls or starttls"
            )
        return self

    @property
    def sends_in_clear_over_a_network(self) -> bool:
        return self.smtp_security is SmtpSecurity.NONE and not is_loopback(self.smtp_host)


def _check_verp_base(address: str) -> None:
    local = address.rpartition("@")[0]
    # A 16-character token and its "+" must fit the 64 of RFC 5321.
    if len(local) > 47 or "+" in local or '"' in local:
        raise ValueError(
            f"EMBARGO_BOT_RETURN_PATH_VERP: the return path {address!r} cannot carry a token "
            "(its local part must be at most 47 characters, without '+' or quotes)"
        )


_FIELD_TO_VARIABLE = {"sender": "FROM"}


def load_settings(**overrides: object) -> Settings:
    """Settings from environment and ``.env``, with a clear ``ConfigError`` when invalid."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # "from None": the validation error holds the raw values, secrets included.
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if not location:
            lines.append(message)
            continue
        field = location[0]
        variable = _FIELD_TO_VARIABLE.get(field, field.upper())
        if not variable.startswith(ENV_PREFIX):
            variable = ENV_PREFIX + variable
        lines.append(f"{variable}: {message}")
    return "invalid setting: " + "; ".join(lines)
