"""The return path and bounce mailbox settings: defaults, what is refused, no leaks."""

from __future__ import annotations

from typing import Any

import pytest

from embargo_bot.app import bounce_mailbox
from embargo_bot.delivery.smtp import RelayConfig, dsn_options, envelope_sender
from embargo_bot.domain.errors import ConfigError
from embargo_bot.domain.transport import SmtpSecurity
from embargo_bot.settings import load_settings

PASSWORD = "imap-secret-horse"
MAILBOX = {
    "bounce_imap_host": "imap.gov.example",
    "bounce_imap_username": "bounces",
    "bounce_imap_password": PASSWORD,
}


def settings(**overrides: Any) -> Any:
    return load_settings(_env_file=None, sender="Unit <ocu@gov.example>", **overrides)


def refused(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(**overrides)
    message = str(caught.value)
    assert PASSWORD not in message
    return message


def test_defaults_read_no_bounces_and_return_to_the_from_address() -> None:
    found = settings()
    assert found.envelope_sender == "ocu@gov.example"
    assert found.return_path_verp is False and found.bounce_imap_host is None
    assert found.bounce_poll == 60 and found.bounce_imap_folder == "INBOX"
    assert bounce_mailbox(found) is None
    # A login without a host reads nothing either.
    login = {k: v for k, v in MAILBOX.items() if k != "bounce_imap_host"}
    assert bounce_mailbox(settings(**login)) is None


def test_a_mailbox_is_tls_on_993_by_default_and_its_password_is_secret() -> None:
    found = settings(return_path="bounces@gov.example", **MAILBOX)
    mailbox = bounce_mailbox(found)
    assert mailbox is not None
    assert (mailbox.security, mailbox.port, mailbox.folder) == ("tls", 993, "INBOX")
    assert mailbox.password == PASSWORD
    assert found.envelope_sender == "bounces@gov.example"
    for shown in (repr(found), str(found), repr(mailbox)):
        assert PASSWORD not in shown
    assert bounce_mailbox(settings(bounce_imap_security="starttls", **MAILBOX)).port == 143  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"bounce_imap_security": "none", **MAILBOX}, "BOUNCE_IMAP_SECURITY=none is only allowed"),
        ({"bounce_imap_host": "imap.gov.example"}, "set EMBARGO_BOT_BOUNCE_IMAP_USERNAME"),
        ({"return_path": "not an address"}, "EMBARGO_BOT_RETURN_PATH: 'not an address'"),
        ({"return_path": "a" * 50 + "@gov.example", "return_path_verp": True}, "cannot carry"),
        ({"bounce_imap_folder": "Boîte", **MAILBOX}, "printable ASCII"),
        ({"bounce_poll": 0, **MAILBOX}, "EMBARGO_BOT_BOUNCE_POLL"),
    ],
)
def test_what_is_refused_names_the_setting(overrides: dict[str, Any], words: str) -> None:
    assert words in refused(**overrides)


def test_none_is_allowed_for_a_loopback_mailbox() -> None:
    found = settings(**{**MAILBOX, "bounce_imap_host": "127.0.0.1", "bounce_imap_security": "none"})
    assert bounce_mailbox(found) is not None


def relay(**more: Any) -> RelayConfig:
    return RelayConfig("127.0.0.1", 25, SmtpSecurity.NONE, None, None, 5, None, "x", **more)


def test_the_envelope_sender_is_the_return_path_tagged_with_the_token_when_verp_is_on() -> None:
    token = "abcdefghijklmnop"
    assert envelope_sender(relay(), "ocu@gov.example", token) == "ocu@gov.example"
    plain = relay(return_path="bounces@gov.example")
    assert envelope_sender(plain, "ocu@gov.example", token) == "bounces@gov.example"
    verp = relay(return_path="bounces@gov.example", verp=True)
    assert envelope_sender(verp, "ocu@gov.example", token) == f"bounces+{token}@gov.example"
    assert envelope_sender(verp, "ocu@gov.example", None) == "bounces@gov.example"
    # Where the relay offers DSN: only headers come back, never the embargoed PDF.
    assert dsn_options(token) == ["RET=HDRS", f"ENVID={token}"]
