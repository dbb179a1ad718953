"""What only a SQLite store has: its file, the release before migrations, first opens racing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PackFiles, queue_args

from embargo_bot.domain.errors import StoreError
from embargo_bot.store import HEAD, Store, upgrade
from embargo_bot.store.migrate import script_head

from .legacy import make_legacy_store, table_shapes


def revision(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        connection.close()


def test_the_code_knows_the_newest_migration() -> None:
    assert script_head() == HEAD


def test_a_new_store_is_created_at_the_newest_revision(tmp_path: Path) -> None:
    path = tmp_path / "new" / "store.db"
    Store.open(path).close()
    assert revision(path) == HEAD
    assert path.stat().st_mode & 0o777 == 0o600


def at_revision(path: Path, revision: str) -> None:
    """A store as an older release made it: migrated only so far."""
    from alembic import command

    from embargo_bot.store.engine import make_engine
    from embargo_bot.store.migrate import _config
    from embargo_bot.store.target import sqlite_target

    engine = make_engine(sqlite_target(path))
    try:
        with engine.begin() as connection:
            command.upgrade(_config(connection), revision)
    finally:
        engine.dispose()


def test_revision_one_is_the_schema_the_release_before_it_made(tmp_path: Path) -> None:
    made_by_migration, made_by_release = tmp_path / "migrated.db", tmp_path / "release.db"
    at_revision(made_by_migration, "0001")
    make_legacy_store(made_by_release)
    assert table_shapes(made_by_migration) == table_shapes(made_by_release)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}


def test_a_store_made_before_migrations_is_refused_until_upgraded_then_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    make_legacy_store(path)
    with pytest.raises(StoreError) as refused:
        Store.open(path)
    assert str(refused.value) == (
        f"the store at {path} is at revision 0001; this embargo-bot needs {HEAD}: "
        "run `embargo-bot db upgrade`"
    )
    assert "alembic_version" not in tables(path), "refusing changed nothing"
    assert upgrade(path) == ("0001", HEAD)
    store = Store.open(path)
    try:
        assert [p.id for p in store.packs()] == ["old-pack"]
        assert store.get_pack("old-pack").title == "Old title"
        assert store.meta("schema") == b"3", "the release before migrations now refuses it"
    finally:
        store.close()
    assert revision(path) == HEAD


def test_a_store_at_an_older_revision_is_refused_until_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    at_revision(path, "0001")
    with pytest.raises(StoreError, match=r"at revision 0001; .* run `embargo-bot db upgrade`"):
        Store.open(path)
    assert upgrade(path) == ("0001", HEAD)
    Store.open(path).close()


def test_a_store_of_an_unknown_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    make_legacy_store(path, schema="1")
    with pytest.raises(StoreError, match=r"schema version 1; this embargo-bot reads version 2"):
        Store.open(path)
    assert "alembic_version" not in tables(path)


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    Store.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"at revision 9999, which this embargo-bot .* not know"):
        Store.open(path)


def test_upgrade_is_idempotent_and_needs_a_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with pytest.raises(StoreError, match=r"no store at .*store.db to upgrade"):
        upgrade(path)
    assert not path.exists()
    make_legacy_store(path)
    assert upgrade(path) == ("0001", HEAD)
    assert upgrade(path) == (HEAD, HEAD)
    before = path.read_bytes()
    assert upgrade(path) == (HEAD, HEAD)
    assert path.read_bytes() == before


def test_without_create_a_missing_store_is_an_error_and_nothing_is_made(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=r"no store at .*missing.db \(EMBARGO_BOT_DATABASE\)"):
        Store.open(path, create=False)
    assert list(tmp_path.iterdir()) == []
    Store.open(path).close()
    Store.open(path, create=False).close()


# Both run as subprocesses, with tests/store on their path for lock_pause.
# The second opener (as `run` starting during a `queue`): warmed up, it says so,
# then opens the store the moment the first is stopped half-way through creating it.
SECOND = """\
import pathlib, sys
sys.path.insert(0, sys.argv[1])
from lock_pause import wait_for
from sqlalchemy import create_engine
from embargo_bot.store import Store
create_engine("sqlite://").connect().close()
store_path, paused, ready = map(pathlib.Path, sys.argv[2:5])
ready.touch()
wait_for(paused)
store = Store.open(store_path)
store.set_meta("opened by the second", b"1")
store.close()
"""
# The first opener, `Store.open` or `embargo-bot queue ARGS`: it stops inside SQLite
# on its first RESERVED request, on a new store the switch to WAL, until the second
# is ready and then switching too (or 0.5 s have passed: that takes milliseconds).
FIRST = """\
import pathlib, sys
sys.path.insert(0, sys.argv[1])
from lock_pause import pause_before_reserved
store_path, paused, ready = map(pathlib.Path, sys.argv[2:5])
pause_before_reserved(ready, paused, longest=0.5)
if sys.argv[5:]:
    from embargo_bot.cli.main import main
    sys.exit(main(sys.argv[5:]))
from embargo_bot.store import Store
store = Store.open(store_path)
store.set_meta("opened by the first", b"1")
store.close()
"""


@pytest.mark.parametrize("first", ["Store.open", "embargo-bot queue"])
def test_a_command_creating_the_store_survives_another_opening_it_meanwhile(
    first: str, tmp_path: Path, env: dict[str, str], pack_files: PackFiles
) -> None:
    """Issue 9, fault 8: `run` starting while `queue` created the store failed the queue.

    There SQLite cannot wait: the first holds SHARED from reading the new file and
    needs RESERVED to switch it to WAL; the second holds RESERVED and waits for
    that SHARED to go, so the first is told "database is locked" at once, busy
    timeout or not. The creation lock keeps the second out until the store is made.
    """
    path = Path(env["EMBARGO_BOT_DATABASE"])
    paused, ready = tmp_path / "paused", tmp_path / "ready"
    common = [str(Path(__file__).parent), str(path), str(paused), str(ready)]
    command = queue_args(pack_files, "--json") if first == "embargo-bot queue" else []
    second, first_process = (
        subprocess.Popen(
            [sys.executable, "-c", script, *common, *args],
            env={**os.environ, **env},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, args in ((SECOND, []), (FIRST, command))
    )
    (_, second_err), (first_out, first_err) = (
        process.communicate(timeout=30) for process in (second, first_process)
    )
    assert paused.exists(), "the first never reached the switch to WAL: nothing was tested"
    assert first_process.returncode == 0 and not first_err, first_err
    assert second.returncode == 0 and not second_err, second_err
    store = Store.open(path, create=False)
    try:
        assert store.meta("opened by the second") == b"1"
        if command:
            assert [pack.id for pack in store.packs()] == [json.loads(first_out)["id"]]
        else:
            assert store.meta("opened by the first") == b"1"
    finally:
        store.close()


def test_the_batch_revision_keeps_every_delivery_and_its_attempts_in_order(tmp_path: Path) -> None:
    """0006 copies `deliveries` (SQLite cannot drop its UNIQUE): rows, order, attempts kept."""
    import sqlite3

    path = tmp_path / "old.db"
    at_revision(path, "0002")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO packs (id, classification, contact, lift_at, list_keys, state, "
            "created_at, created_by) VALUES ('p', 'OFFICIAL', 'c@x.example', 't', 'a', "
            "'active', 't', 'me')"
        )
        db.execute(
            "INSERT INTO stages (pack_id, kind, due_at, state) VALUES ('p', 'notice', 't', 'done')"
        )
        for email in ("z@x.example", "a@x.example", "m@x.example"):
            db.execute(
                "INSERT INTO deliveries (stage_id, pack_id, kind, email, list_key, message_id, "
                "state, created_at, updated_at) VALUES (1, 'p', 'notice', ?, 'a', ?, 'sent', "
                "'t', 't')",
                (email, f"<{email}>"),
            )
            db.execute(
                "INSERT INTO attempts VALUES (1, ?, 1, 't', 'accepted', 250, 'ok')", (email,)
            )
    assert upgrade(path) == ("0002", HEAD)
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT email FROM deliveries ORDER BY rowid")] == [
            "z@x.example",
            "a@x.example",
            "m@x.example",
        ]
        assert db.execute("SELECT count(*) FROM attempts").fetchone() == (3,)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {r[1]: r[2] for r in db.execute("PRAGMA index_list(deliveries)")}
        assert indexes["deliveries_by_message"] == 0  # indexed, not unique
        db.execute("UPDATE deliveries SET message_id = '<shared>'")  # one message, many rows
