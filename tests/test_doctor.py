"""`embargo-bot doctor`: one line per check, against a real relay, store and lists."""

from __future__ import annotations

import json
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import PackFiles, queue_args

from embargo_bot.cli.health import Status, env_file_check
from embargo_bot.cli.main import main
from embargo_bot.devtools.standin_relay import StandInRelay, free_loopback_port
from embargo_bot.security.vault import new_key

LOGIN = {"ocu": "the-password"}


def doctor(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["doctor", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def lines_of(out: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in out.splitlines():
        status, rest = line.split(None, 1)
        found.setdefault(rest.split(":", 1)[0], f"{status} {rest}")
    return found


@pytest.fixture
def login_relay(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> StandInRelay:
    relay = StandInRelay(logins=LOGIN)
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", str(relay.port))
    monkeypatch.setenv("EMBARGO_BOT_SMTP_USERNAME", "ocu")
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PASSWORD", "the-password")
    return relay


def test_all_well_before_the_first_start_says_where_the_store_will_be(
    login_relay: StandInRelay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    with login_relay:
        code, out, err = doctor(capsys)
    assert code == 0, out + err
    lines = lines_of(out)
    assert lines["settings"].startswith("OK")
    assert lines["relay"] == (
        f"OK relay: 127.0.0.1:{login_relay.port}: connected, no TLS (clear text), logged in as ocu"
    )
    assert lines["store"] == (
        f"OK store: none yet at {tmp_path / 'store.db'}: `embargo-bot queue` or "
        "`embargo-bot run` will create it there"
    )
    assert lines["key"].startswith("OK") and lines["lists"].startswith("OK lists: 3 valid")
    assert sorted(tmp_path.rglob("*")) == before, "created nothing"
    assert "the-password" not in out + err


def test_a_refused_login_fails_and_names_the_settings(
    login_relay: StandInRelay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PASSWORD", "not-the-password")
    with login_relay:
        code, out, _ = doctor(capsys)
    assert code == 1
    relay = lines_of(out)["relay"]
    assert relay.startswith(
        f"FAIL relay: 127.0.0.1:{login_relay.port}: the relay refused the login (535"
    )
    assert relay.endswith("check EMBARGO_BOT_SMTP_USERNAME and EMBARGO_BOT_SMTP_PASSWORD")
    assert "not-the-password" not in out


def test_nothing_listening_fails_naming_host_and_port(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_loopback_port()
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", str(port))
    code, out, _ = doctor(capsys)
    assert code == 1
    relay = lines_of(out)["relay"]
    assert relay.startswith(f"FAIL relay: 127.0.0.1:{port}: cannot connect (")
    assert "check EMBARGO_BOT_SMTP_HOST and EMBARGO_BOT_SMTP_PORT" in relay


def test_starttls_asked_of_a_relay_that_offers_none_fails_as_tls(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StandInRelay() as relay:
        monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", str(relay.port))
        monkeypatch.setenv("EMBARGO_BOT_SMTP_SECURITY", "starttls")
        code, out, _ = doctor(capsys)
    assert code == 1
    assert lines_of(out)["relay"].startswith(f"FAIL relay: 127.0.0.1:{relay.port}: TLS failed (")


def test_an_existing_store_is_checked_against_the_key(
    login_relay: StandInRelay,
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(queue_args(pack_files)) == 0
    capsys.readouterr()
    with login_relay:
        code, out, _ = doctor(capsys)
        assert code == 0, out
        assert lines_of(out)["key"] == "OK key: EMBARGO_BOT_KEY opens this store"
        assert "at revision" in lines_of(out)["store"]

        monkeypatch.setenv("EMBARGO_BOT_KEY", new_key())
        code, out, _ = doctor(capsys, "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    [key] = [c for c in document["checks"] if c["check"] == "key"]
    assert key["status"] == "fail" and "EMBARGO_BOT_KEY" in key["detail"]


def test_an_invalid_setting_fails_and_skips_what_needs_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", "99999")
    code, out, err = doctor(capsys)
    assert code == 1 and "Traceback" not in err
    assert lines_of(out)["settings"].startswith(
        "FAIL settings: invalid setting: EMBARGO_BOT_SMTP_PORT"
    )
    assert "relay" not in lines_of(out)


def test_a_dot_env_holding_the_key_readable_by_others_is_a_warning(
    login_relay: StandInRelay, tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dot_env = tmp_path / ".env"
    dot_env.write_text(f"EMBARGO_BOT_KEY={key}\n", encoding="utf-8")
    dot_env.chmod(0o644)
    with login_relay:
        code, out, _ = doctor(capsys)
    assert code == 0, "a warning, not a failure"
    assert lines_of(out)[".env"] == (
        f"WARN .env: {dot_env} holds EMBARGO_BOT_KEY and can be read by group and others "
        f"(mode 0644): run `chmod 600 {dot_env}`"
    )
    dot_env.chmod(0o600)
    _, out, _ = doctor(capsys)
    assert lines_of(out)[".env"].startswith("OK")


@pytest.mark.parametrize(
    ("mode", "text", "status"),
    [
        (0o600, "EMBARGO_BOT_KEY=x\n", Status.OK),
        (0o640, "EMBARGO_BOT_KEY=x\n", Status.WARN),
        (0o604, "  EMBARGO_BOT_KEY=x\n", Status.WARN),
        (0o644, "EMBARGO_BOT_SMTP_HOST=relay.example.org\n", Status.OK),
    ],
)
def test_env_file_check(mode: int, text: str, status: Status) -> None:
    assert env_file_check(Path(".env"), stat.S_IFREG | mode, text).status is status


def starttls_relay(ca: trustme.CA, **options: Any) -> StandInRelay:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return StandInRelay(tls_context=context, **options)


def test_starttls_with_a_verified_certificate_and_a_login_is_ok(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with starttls_relay(ca, logins=LOGIN) as relay:
        monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", str(relay.port))
        monkeypatch.setenv("EMBARGO_BOT_SMTP_SECURITY", "starttls")
        monkeypatch.setenv("EMBARGO_BOT_SMTP_CA_FILE", str(tmp_path / "ca.pem"))
        monkeypatch.setenv("EMBARGO_BOT_SMTP_USERNAME", "ocu")
        monkeypatch.setenv("EMBARGO_BOT_SMTP_PASSWORD", "the-password")
        code, out, _ = doctor(capsys)
        assert lines_of(out)["relay"] == (
            f"OK relay: 127.0.0.1:{relay.port}: connected, STARTTLS (required), logged in as ocu"
        )
        assert code == 0

        # The same relay, but its certificate is not from a CA this machine trusts.
        monkeypatch.delenv("EMBARGO_BOT_SMTP_CA_FILE")
        code, out, _ = doctor(capsys)
    assert code == 1
    relay_line = lines_of(out)["relay"]
    assert relay_line.startswith(f"FAIL relay: 127.0.0.1:{relay.port}: TLS failed (")
    assert "EMBARGO_BOT_SMTP_CA_FILE" in relay_line
