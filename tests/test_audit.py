"""The audit log: every action recorded, and any tampering found by `audit verify`."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PackFiles, queue, running, wait_until

from embargo_bot.app import open_app
from embargo_bot.cli.main import main
from embargo_bot.devtools.standin_relay import StandInRelay
from embargo_bot.officials.actions import approve_pack, cancel_pack
from embargo_bot.officials.changes import reschedule_pack
from embargo_bot.settings import Settings


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def audited(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, str]:
    """A pack queued, cleared, rescheduled and sent by the service: a log with a story."""
    settings = make_settings(relay, require_clearance=True)
    for name, value in {
        "EMBARGO_BOT_DATABASE": settings.database,
        "EMBARGO_BOT_KEY": settings.key.get_secret_value() if settings.key else "",
        "EMBARGO_BOT_RECIPIENTS_DIR": settings.recipients_dir,
        "EMBARGO_BOT_FROM": settings.sender,
    }.items():
        monkeypatch.setenv(name, str(value))
    return settings, ""


async def test_every_action_and_stage_is_recorded_with_who_and_when(
    audited: tuple[Settings, str], make_request: Callable[..., Any]
) -> None:
    settings, _ = audited
    with open_app(settings) as app:
        from embargo_bot.officials.actions import queue_pack

        pack = queue_pack(app, make_request(lists="alpha"), created_by="alice")
        approve_pack(app, pack.id, approver="bob")
        reschedule_pack(
            app, pack.id, lift=(pack.lift_at.replace(microsecond=0)).isoformat(), by="carol"
        )
        async with running(app):
            await wait_until(lambda: any(
                e.action == "stage done" for e in app.store.audit_entries()
            ))  # fmt: skip
        cancel_pack(app, pack.id, reason="Postponed", by="dave")
        entries = app.store.audit_entries()

    story = [(e.action, e.actor.split(" ")[0], e.pack_id) for e in entries[:6]]
    assert story[:3] == [
        ("queued", "alice", pack.id),
        ("approved", "bob", pack.id),
        ("rescheduled", "carol", pack.id),
    ]
    actions = [e.action for e in entries]
    assert "stage started" in actions and "stage done" in actions and actions[-1] == "withdrawn"
    assert entries[-1].actor == "dave" and entries[-1].detail["reason"] == "Postponed"
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.at.tzinfo is not None for e in entries)


def tamper(database: Path, *statements: str) -> None:
    """What someone with the database file, but not the key, could do."""
    connection = sqlite3.connect(database)
    try:
        connection.execute("DROP TRIGGER audit_is_append_only_update")
        connection.execute("DROP TRIGGER audit_is_append_only_delete")
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def log_with_entries(settings: Settings, make_request: Callable[..., Any]) -> str:
    with open_app(settings) as app:
        before = len(app.store.audit_entries())
        pack = queue(app, make_request())
        approve_pack(app, pack.id, approver="bob")
        cancel_pack(app, pack.id, by="carol")
        assert len(app.store.audit_entries()) == before + 3
        return pack.id


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE audit SET actor = 'mallory' WHERE seq = 2"], "entry 2"),
        (["DELETE FROM audit WHERE seq = 2"], "entries were deleted or reordered"),
        (
            # Swap entries 1 and 2, MACs and all.
            [
                "UPDATE audit SET seq = 99 WHERE seq = 1",
                "UPDATE audit SET seq = 1 WHERE seq = 2",
                "UPDATE audit SET seq = 2 WHERE seq = 99",
            ],
            "entry",
        ),
        (["DELETE FROM audit WHERE seq = 3"], "removed from the end"),
        (["UPDATE meta SET value = 'forged' WHERE name = 'audit_head'"], "head"),
    ],
    ids=["edited", "deleted", "reordered", "cut short", "head forged"],
)
def test_audit_verify_finds_each_kind_of_tampering(
    audited: tuple[Settings, str],
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    statements: list[str],
    expected: str,
) -> None:
    settings, _ = audited
    log_with_entries(settings, make_request)
    code, out, _ = run_cli(capsys, "audit", "verify")
    assert code == 0 and "intact: 3 entries" in out

    tamper(settings.database, *statements)
    code, out, err = run_cli(capsys, "audit", "verify")
    assert code != 0
    assert "tampered" in err and expected in err, err


def test_the_store_itself_refuses_to_change_the_log(
    audited: tuple[Settings, str], make_request: Callable[..., Any]
) -> None:
    settings, _ = audited
    log_with_entries(settings, make_request)
    connection = sqlite3.connect(settings.database)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE audit SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("DELETE FROM audit")
    finally:
        connection.close()


def test_audit_export_writes_csv_and_json_for_an_foi_officer(
    audited: tuple[Settings, str],
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, _ = audited
    first = log_with_entries(settings, make_request)
    log_with_entries(settings, make_request)

    code, out, _ = run_cli(capsys, "audit", "export", "--pack", first, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("queued", rows[0]["actor"]),
        ("approved", "bob"),
        ("withdrawn", "carol"),
    ]
    assert {r["pack"] for r in rows} == {first}
    code, out, _ = run_cli(capsys, "audit", "export", "--format", "json")
    document = json.loads(out)
    assert len(document) == 6 and all(len(entry["mac"]) == 64 for entry in document)
    code, _, err = run_cli(capsys, "audit", "export", "--pack", "nope")
    assert code != 0 and "no pack 'nope'" in err


def test_the_audit_log_needs_the_key_and_shows_no_secret(
    audited: tuple[Settings, str],
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pack_files: PackFiles,
) -> None:
    settings, _ = audited
    log_with_entries(settings, make_request)
    code, out, _ = run_cli(capsys, "audit", "export", "--format", "json")
    key = settings.key.get_secret_value() if settings.key else ""
    assert key not in out
    monkeypatch.setenv("EMBARGO_BOT_KEY", "x" * 10)
    code, _, err = run_cli(capsys, "audit", "verify")
    assert code == 78 and "EMBARGO_BOT_KEY" in err
