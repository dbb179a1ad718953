"""The store's thread: outcomes recorded meanwhile share a commit, and never each other's fate."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from embargo_bot.delivery.store_thread import StoreThread
from embargo_bot.store import Store


def written(store: Store, name: str, value: bytes) -> str:
    store.set_meta(name, value)
    return name


async def test_commits_queued_while_the_thread_is_busy_share_one_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    Store.open(path).close()
    thread = StoreThread(lambda: Store.open(path, create=False))
    busy, free = threading.Event(), threading.Event()
    seen_from_outside: list[tuple[bytes] | None] = []

    def hold(store: Store) -> None:
        busy.set()
        free.wait(5)

    def last(store: Store) -> str:
        # A reader elsewhere does not yet see the first one's write: one transaction, open.
        with contextlib.closing(sqlite3.connect(path)) as outside:
            row = outside.execute("SELECT value FROM meta WHERE name = 'n0'").fetchone()
        seen_from_outside.append(row)
        return written(store, "n3", b"1")

    works: list[Callable[[Store], str]] = [
        functools.partial(written, name=f"n{i}", value=b"1") for i in range(3)
    ]
    works.append(last)

    try:
        holding = asyncio.ensure_future(thread.commit(hold))
        await asyncio.to_thread(busy.wait, 5)
        queued = [asyncio.ensure_future(thread.commit(work)) for work in works]
        await asyncio.sleep(0.05)
        free.set()
        await holding
        assert await asyncio.gather(*queued) == ["n0", "n1", "n2", "n3"]
    finally:
        thread.close()
    assert seen_from_outside == [None]
    store = Store.open(path, create=False)
    try:
        assert [store.meta(f"n{i}") for i in range(4)] == [b"1"] * 4
    finally:
        store.close()


async def test_a_failing_commit_fails_alone_and_leaves_nothing_half_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    Store.open(path).close()
    thread = StoreThread(lambda: Store.open(path, create=False))
    busy, free = threading.Event(), threading.Event()

    def hold(store: Store) -> None:
        busy.set()
        free.wait(5)

    def broken(store: Store) -> str:
        written(store, "broken", b"half")
        raise ValueError("this outcome cannot be written")

    try:
        holding = asyncio.ensure_future(thread.commit(hold))
        await asyncio.to_thread(busy.wait, 5)
        first = asyncio.ensure_future(thread.commit(lambda s: written(s, "first", b"1")))
        failing = asyncio.ensure_future(thread.commit(broken))
        last = asyncio.ensure_future(thread.commit(lambda s: written(s, "last", b"1")))
        await asyncio.sleep(0.05)
        free.set()
        await holding
        assert await first == "first" and await last == "last"
        with pytest.raises(ValueError, match="cannot be written"):
            await failing
    finally:
        thread.close()
    store = Store.open(path, create=False)
    try:
        assert (store.meta("first"), store.meta("last"), store.meta("broken")) == (b"1", b"1", None)
    finally:
        store.close()
