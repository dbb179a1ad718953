"""Transport: TLS with certificate and host name checks, never a silent downgrade."""

from __future__ import annotations

import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import queue, running, stage_closed, start_service, wait_until

from embargo_bot.app import open_app
from embargo_bot.devtools.standin_relay import StandInRelay
from embargo_bot.domain.errors import ConfigError
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.settings import Settings, load_settings

TLS = {"smtp_security": "starttls", "retry_backoff": "0.1s", "retry_for": "2s"}


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def ca_file(ca: trustme.CA, tmp_path: Path, name: str = "ca.pem") -> Path:
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return path


async def send_one_notice(settings: Settings, make_request: Callable[..., Any]) -> list[Any]:
    with open_app(settings) as app:
        pack = queue(app, make_request(lists="alpha"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE), within=15)
        return app.store.deliveries(pack.id)


async def test_starttls_with_a_verified_certificate_carries_every_message(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any], tmp_path: Path
) -> None:
    ca = trustme.CA()
    with StandInRelay(tls_context=server_context(ca, "127.0.0.1")) as relay:
        settings = make_settings(relay, smtp_ca_file=ca_file(ca, tmp_path), **TLS)
        deliveries = await send_one_notice(settings, make_request)
    notices = [d for d in deliveries if d.kind is StageKind.NOTICE]
    assert {d.state for d in notices} == {DeliveryState.SENT}
    assert relay.received and all(item.over_tls for item in relay.received)


@pytest.mark.parametrize("case", ["unknown CA", "wrong host name"])
async def test_a_certificate_that_does_not_verify_stops_the_mail(
    case: str,
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    tmp_path: Path,
) -> None:
    ca, other = trustme.CA(), trustme.CA()
    names = ("relay.example.org",) if case == "wrong host name" else ("127.0.0.1",)
    trusted = other if case == "unknown CA" else ca
    with StandInRelay(tls_context=server_context(ca, *names)) as relay:
        settings = make_settings(relay, smtp_ca_file=ca_file(trusted, tmp_path), **TLS)
        deliveries = await send_one_notice(settings, make_request)
    notices = [d for d in deliveries if d.kind is StageKind.NOTICE]
    assert relay.received == [], "not one message over an unverified connection"
    assert {d.state for d in notices} == {DeliveryState.FAILED}
    assert all("CERTIFICATE_VERIFY_FAILED" in (d.reply or "") for d in notices), notices[0].reply


async def test_a_relay_that_does_not_offer_starttls_gets_nothing_in_clear(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    with StandInRelay() as relay:  # no TLS offered
        deliveries = await send_one_notice(make_settings(relay, **TLS), make_request)
    notices = [d for d in deliveries if d.kind is StageKind.NOTICE]
    assert relay.received == []
    assert {d.state for d in notices} == {DeliveryState.FAILED}
    assert all("STARTTLS" in (d.reply or "") for d in notices), notices[0].reply


def test_clear_text_to_a_host_off_this_machine_needs_an_explicit_override(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigError, match="only allowed for a loopback relay"):
        load_settings(_env_file=None, smtp_host="relay.example.org", smtp_security="none")
    allowed = load_settings(
        _env_file=None,
        smtp_host="relay.example.org",
        smtp_security="none",
        smtp_allow_plaintext=True,
    )
    assert allowed.sends_in_clear_over_a_network
    assert not load_settings(_env_file=None).sends_in_clear_over_a_network


def test_run_warns_loudly_when_told_to_send_in_clear(tmp_path: Path, key: str) -> None:
    env = {
        "EMBARGO_BOT_SMTP_HOST": "relay.example.org",
        "EMBARGO_BOT_SMTP_SECURITY": "none",
        "EMBARGO_BOT_SMTP_ALLOW_PLAINTEXT": "true",
        "EMBARGO_BOT_DATABASE": str(tmp_path / "s.db"),
        "EMBARGO_BOT_RECIPIENTS_DIR": str(tmp_path),
        "EMBARGO_BOT_KEY": key,
    }
    service = start_service(env, tmp_path)
    try:
        assert service.stderr is not None
        first_lines = [service.stderr.readline() for _ in range(2)]
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=15)
    assert any("INSECURE" in line and "relay.example.org" in line for line in first_lines)
