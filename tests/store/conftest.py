"""The store contract suite's fixtures: one store per test, on each backend.

Only these fixtures know which backend is under test; every test in this
folder that takes ``store`` or ``open_store`` runs unchanged on each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from embargo_bot.store import Store
from embargo_bot.store.tables import metadata

if TYPE_CHECKING:
    from servers.postgres import PostgresServer

PLUGIN = "servers.postgres"


def pytest_configure(config: pytest.Config) -> None:
    # The lead lists the plugin in the top conftest; until then, or when only
    # this folder runs, load it here (once: the name is the same either way).
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


class OpenStore(Protocol):
    def __call__(self, *, closed_by_caller: bool = False) -> Store: ...


@pytest.fixture(scope="session")
def postgres_store(postgres_server: PostgresServer) -> str:
    """One database holding a store, emptied before each test that uses it.

    Emptying takes milliseconds where copying a database takes a few hundred
    on a busy machine; creating the tables in a fresh database is tested on its own.
    """
    name = postgres_server.new_database()
    Store.open(postgres_server.url(name)).close()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """EMBARGO_BOT_DATABASE for a new, empty store of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = request.getfixturevalue("postgres_store")
    data = ", ".join(table.name for table in metadata.sorted_tables if table.name != "meta")
    server.sql(
        f"TRUNCATE {data} RESTART IDENTITY",
        "DELETE FROM meta WHERE name <> 'schema'",
        database=name,
    )
    return server.url(name)


@pytest.fixture
def open_store(store_url: str) -> Iterator[OpenStore]:
    """Opens another connection to this test's store: as another process would."""
    opened: list[Store] = []

    def connect(*, closed_by_caller: bool = False) -> Store:
        store = Store.open(store_url)
        if not closed_by_caller:
            opened.append(store)
        return store

    yield connect
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()
