"""Security a partner agency would check: file access, secrets, retention, list changes."""

from __future__ import annotations

import grp
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PackFiles,
    at,
    queue,
    queue_args,
    running,
    stage_closed,
    stages_closed,
    wait_until,
)

from embargo_bot.app import App, open_app
from embargo_bot.cli.main import main
from embargo_bot.devtools.standin_relay import StandInRelay
from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.packs import StageKind
from embargo_bot.settings import Settings

PASSWORD = "Relay-Pa55word-never-shown"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The usual settings, with a relay login and the store in a folder of its own."""
    extra = {
        "EMBARGO_BOT_DATABASE": str(tmp_path / "store" / "embargo.db"),
        "EMBARGO_BOT_SMTP_USERNAME": "embargo-bot",
        "EMBARGO_BOT_SMTP_PASSWORD": PASSWORD,
    }
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    return {**env, **extra}


def test_the_store_and_every_file_written_are_private_to_their_owner(
    env: dict[str, str], pack_files: PackFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(queue_args(pack_files, "--json")) == 0
    pack_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["preview", pack_id, "--out", str(tmp_path / "preview")]) == 0
    database = Path(env["EMBARGO_BOT_DATABASE"])
    files = [database, *database.parent.glob("embargo.db-*"), *(tmp_path / "preview").iterdir()]
    assert len(files) >= 4
    assert {mode(path) for path in files} == {0o600}, {p.name: oct(mode(p)) for p in files}


def test_a_shared_group_of_officials_gets_group_access_and_no_one_else(
    env: dict[str, str],
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    group = grp.getgrgid(os.getgid())
    monkeypatch.setenv("EMBARGO_BOT_SHARED_GROUP", group.gr_name)
    assert main(queue_args(pack_files, "--json")) == 0
    pack_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["preview", pack_id, "--out", str(tmp_path / "preview")]) == 0
    database = Path(env["EMBARGO_BOT_DATABASE"])
    files = [database, *database.parent.glob("embargo.db-*"), *(tmp_path / "preview").iterdir()]
    assert {mode(path) for path in files} == {0o660}
    assert {path.stat().st_gid for path in files} == {group.gr_gid}


def test_secrets_never_appear_in_any_output_log_or_the_store(
    env: dict[str, str],
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = env["EMBARGO_BOT_KEY"]
    outputs: list[str] = []

    def run(*args: str) -> None:
        main(list(args))
        captured = capsys.readouterr()
        outputs.extend([captured.out, captured.err])

    run(*queue_args(pack_files, "--json"))
    pack_id = json.loads(outputs[0])["id"]
    for args in (
        ["list", "--json"],
        ["list"],
        ["show", pack_id, "--json"],
        ["show", pack_id],
        ["lists", "check", "--json"],
        ["preview", pack_id, "--out", str(tmp_path / "p"), "--json"],
        ["audit", "export", "--format", "json"],
        ["audit", "verify"],
        ["cancel", pack_id, "--json"],
    ):
        run(*args)
    # Errors too: a bad setting beside the secrets, and a wrong key.
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", "not-a-port")
    run("list")
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", "2525")
    monkeypatch.setenv("EMBARGO_BOT_KEY", key[:-4] + "AAA=")
    run("preview", pack_id, "--out", str(tmp_path / "q"))
    monkeypatch.setenv("EMBARGO_BOT_KEY", key)

    # The service's log, while it fails to log in to a relay that offers no AUTH.
    with StandInRelay() as relay:
        assert main(queue_args(pack_files)) == 0
        outputs.append(capsys.readouterr().out)
        child_env = {**os.environ, **env, "EMBARGO_BOT_SMTP_PORT": str(relay.port)}
        service = subprocess.Popen(
            [sys.executable, "-m", "embargo_bot", "run"],
            env=child_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.5)
        service.send_signal(signal.SIGTERM)
        _, log = service.communicate(timeout=15)
    outputs.append(log)
    assert "relay cannot be reached" in log or "failed" in log, log

    stored = b"".join(p.read_bytes() for p in Path(env["EMBARGO_BOT_DATABASE"]).parent.iterdir())
    for secret in (PASSWORD, key):
        assert all(secret not in text for text in outputs), secret
        assert secret.encode() not in stored
    assert any("EMBARGO_BOT_SMTP_PORT" in text for text in outputs)


async def test_retention_deletes_the_material_but_keeps_every_record(
    relay: StandInRelay, make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    real_now = datetime.now(UTC)
    settings = make_settings(relay, retain_days=30)
    # Queued and published 31 days ago: a service down since then sends the live email now.
    with open_app(settings, clock=lambda: real_now - timedelta(days=32)) as earlier:
        pack = queue(earlier, make_request(lift=at(real_now - timedelta(days=31))))
    with open_app(settings) as app:
        async with running(app):
            await wait_until(lambda: stages_closed(app, pack.id))
        # The next start tidies up what is past retention.
        async with running(app):
            await wait_until(lambda: app.store.get_pack(pack.id).purged_at is not None)
        purged = app.store.get_pack(pack.id)
        versions = app.store.sealed_versions()
        deliveries = app.store.deliveries(pack.id)
        with pytest.raises(StoreError, match=r"deleted .* EMBARGO_BOT_RETAIN_DAYS"):
            app.messages.content(purged)
        actions = [e.action for e in app.store.audit_entries()]

    assert [(v.pdf, v.release, v.social) for _, _, v in versions] == [(b"", b"", None)]
    assert purged.title == pack.title and len(deliveries) >= 3
    assert "material deleted" in actions


async def test_the_service_records_when_list_files_change(
    relay: StandInRelay, make_settings: Callable[..., Settings], lists_dir: Path
) -> None:
    with open_app(make_settings(relay)) as app:
        async with running(app):
            await wait_until(lambda: len(app.store.audit_entries()) == 1)
        (lists_dir / "alpha.yaml").write_text(
            (lists_dir / "alpha.yaml").read_text(encoding="utf-8") + "# edited\n",
            encoding="utf-8",
        )
        async with running(app):
            await wait_until(lambda: len(app.store.audit_entries()) == 2)
        first, second = app.store.audit_entries()
    assert first.action == second.action == "lists changed"
    assert first.detail["files"] != second.detail["files"]
    assert set(second.detail["files"]) == {"alpha.yaml", "beta.yaml", "low.yaml"}


async def test_a_list_that_changed_for_the_worse_is_left_out_of_the_stage_with_a_report(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any], lists_dir: Path
) -> None:
    app = app_with_relay
    (lists_dir / "low_ok.yaml").write_text(
        "name: Also cleared\nallowed_domains: [lowok.example]\n"
        "max_classification: OFFICIAL-SENSITIVE\nrecipients:\n  - email: desk@lowok.example\n",
        encoding="utf-8",
    )
    pack = queue(app, make_request(lists="alpha,beta,low_ok"))
    # After queueing: beta gains an address outside its domains; alpha's ceiling drops.
    beta = lists_dir / "beta.yaml"
    beta.write_text(beta.read_text(encoding="utf-8") + "  - email: leak@elsewhere.example\n")
    alpha = lists_dir / "alpha.yaml"
    alpha.write_text(alpha.read_text(encoding="utf-8").replace("OFFICIAL-SENSITIVE", "OFFICIAL"))
    async with running(app):
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.REPORT))
    notices = [r for r in relay.received if b"X-Embargo-Stage: notice" in r.data]
    assert [r.rcpt_tos for r in notices] == [("desk@lowok.example",)]
    stage = next(s for s in app.store.stages(pack.id) if s.kind is StageKind.NOTICE)
    assert stage.detail is not None and "lists held" in stage.detail
    assert "beta" in stage.detail and "alpha" in stage.detail
    [report] = [r for r in relay.received if b"X-Embargo-Stage: report" in r.data]
    assert b"lists held" in report.data.replace(b"=\r\n", b"")
    assert "lists held" in [e.action for e in app.store.audit_entries()]
    # The two lists are held back, not lost: the contact is alerted at once.
    [alert] = [r for r in relay.received if b"X-Embargo-Stage: alert" in r.data]
    assert alert.rcpt_tos == ("ocu@example.org",)
