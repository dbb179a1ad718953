"""The store contract suite's fixtures: one store per test, on each backend.

Only these fixtures know which backend is under test; every test in this
folder runs unchanged on each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from embargo_bot.store import Store


class OpenStore(Protocol):
    def __call__(self, *, closed_by_caller: bool = False) -> Store: ...


@pytest.fixture(params=["sqlite"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens another connection to this test's store: as another process would."""
    opened: list[Store] = []
    target = tmp_path / "store.db"

    def connect(*, closed_by_caller: bool = False) -> Store:
        store = Store.open(target)
        if not closed_by_caller:
            opened.append(store)
        return store

    yield connect
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()
