"""What only a PostgreSQL store has: creating one, passwords, an unreachable server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.postgres import APP_PASSWORD, PostgresServer

from embargo_bot.domain.errors import StoreError
from embargo_bot.store import HEAD, Store, core, upgrade

from .builders import T0, add


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A database with nothing in it yet: its name."""
    name = postgres_server.new_database()
    yield name
    postgres_server.drop_database(name)


def test_a_new_store_is_created_at_the_newest_revision(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    store = Store.open(postgres_server.url(empty_database))
    try:
        add(store)
        assert [p.id for p in store.packs()] == ["pack-1"]
    finally:
        store.close()
    assert postgres_server.sql(
        "SELECT version_num FROM alembic_version", database=empty_database
    ) == [(HEAD,)]
    assert upgrade(postgres_server.url(empty_database)) == (HEAD, HEAD)


def test_the_store_itself_refuses_to_change_the_audit_log(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    store = Store.open(postgres_server.url(empty_database))
    try:
        store.append_audit(b"k" * 32, at=T0, actor="a", action="noted", pack_id=None, detail={})
    finally:
        store.close()
    for statement in ("UPDATE audit SET actor = 'mallory'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"):
            postgres_server.sql(statement, database=empty_database)


def test_instances_creating_one_store_at_once_take_turns(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    url = postgres_server.url(empty_database)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait(timeout=10)
            Store.open(url).close()
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_without_create_an_empty_database_is_no_store(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    with pytest.raises(StoreError, match=r"there is no store at postgresql://postgres@/test_"):
        Store.open(postgres_server.url(empty_database), create=False)
    assert postgres_server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                               database=empty_database) == [(0,)]  # fmt: skip


def test_the_password_from_the_setting_is_used_over_tcp(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    url = postgres_server.tcp_url(empty_database)
    Store.open(url, password=APP_PASSWORD).close()
    with pytest.raises(StoreError) as refused:
        Store.open(url, password="Wrong-Secret-42")
    message = str(refused.value)
    assert message.startswith(
        f"cannot open the store postgresql://embargo@127.0.0.1:{postgres_server.port}/"
    )
    assert "password authentication failed" in message and "EMBARGO_BOT_DATABASE" in message
    assert "Wrong-Secret-42" not in message and "\n" not in message


def test_a_password_in_the_url_is_never_in_the_message(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    url = postgres_server.tcp_url(empty_database).replace("embargo@", "embargo:Wrong-Secret-42@")
    with pytest.raises(StoreError) as refused:
        Store.open(url)
    assert "Wrong-Secret-42" not in str(refused.value) and "***" in str(refused.value)


def test_libpq_reads_the_password_file_itself(
    postgres_server: PostgresServer,
    empty_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres_server.port}:*:embargo:{APP_PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    Store.open(postgres_server.tcp_url(empty_database)).close()


def test_an_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    url = f"postgresql://embargo@/embargo?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StoreError) as refused:
        Store.open(url)
    message = str(refused.value)
    assert message.startswith("cannot open the store postgresql://embargo@/embargo?host=")
    assert "\n" not in message and message.endswith("check EMBARGO_BOT_DATABASE")


def test_the_store_carries_on_after_the_server_restarts(
    postgres_server: PostgresServer, empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the restart took longer than the pause after which a held connection is checked.
    monkeypatch.setattr(core, "IDLE_CHECK", 0.0)
    store = Store.open(postgres_server.url(empty_database))
    try:
        add(store)
        postgres_server.restart()
        assert [p.id for p in store.packs()] == ["pack-1"], "a read tries again at once"
        store.set_meta("after restart", b"1")
        assert store.meta("after restart") == b"1"
    finally:
        store.close()


def test_revision_three_lets_one_message_id_name_several_deliveries(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    """0006 on PostgreSQL: the UNIQUE goes, an index comes, every row stays."""
    from alembic import command

    from embargo_bot.store.engine import make_engine
    from embargo_bot.store.migrate import _config
    from embargo_bot.store.target import choose_store

    engine = make_engine(choose_store(postgres_server.url(empty_database)))
    try:
        with engine.begin() as connection:
            command.upgrade(_config(connection), "0002")
    finally:
        engine.dispose()
    postgres_server.sql(
        "INSERT INTO packs (id, classification, contact, lift_at, list_keys, state, "
        "created_at, created_by) VALUES ('p', 'OFFICIAL', 'c@x.example', 't', 'a', 'active', "
        "'t', 'me')",
        "INSERT INTO stages (pack_id, kind, due_at, state) VALUES ('p', 'notice', 't', 'done')",
        "INSERT INTO deliveries (stage_id, pack_id, kind, email, list_key, message_id, state, "
        "created_at, updated_at) VALUES (1, 'p', 'notice', 'a@x.example', 'a', '<a>', 'sent', "
        "'t', 't'), (1, 'p', 'notice', 'b@x.example', 'a', '<b>', 'sent', 't', 't')",
        database=empty_database,
    )
    assert upgrade(postgres_server.url(empty_database)) == ("0002", HEAD)
    postgres_server.sql("UPDATE deliveries SET message_id = '<a>'", database=empty_database)
    assert postgres_server.sql(
        "SELECT email FROM deliveries WHERE message_id = '<a>' ORDER BY row_order",
        database=empty_database,
    ) == [("a@x.example",), ("b@x.example",)]
    assert postgres_server.sql(
        "SELECT indexname FROM pg_indexes WHERE indexname = 'deliveries_by_message'",
        database=empty_database,
    ) == [("deliveries_by_message",)]
