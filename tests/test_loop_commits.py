"""SQLite outcomes on the event loop: one commit for those of one turn, never another's fate."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embargo_bot.delivery.loop_commits import LoopCommits
from embargo_bot.store import Store


def writing(name: str) -> Callable[[Store], None]:
    def work(store: Store) -> None:
        store.set_meta(name, b"1")

    return work


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    Store.open(path).close()
    return path


@pytest.fixture
def commits(path: Path) -> Iterator[LoopCommits]:
    store = Store.open(path, create=False)
    commits = LoopCommits.on(store)
    store.close()
    assert commits is not None
    yield commits
    commits.close()


def outside_sees(path: Path, name: str) -> bool:
    with contextlib.closing(sqlite3.connect(path)) as outside:
        return outside.execute("SELECT 1 FROM meta WHERE name = ?", (name,)).fetchone() is not None


async def test_outcomes_of_one_turn_share_one_commit(path: Path, commits: LoopCommits) -> None:
    seen: list[bool] = []

    def last(store: Store) -> None:
        # The first one's write is not yet visible elsewhere: one transaction, still open.
        seen.append(outside_sees(path, "n0"))
        store.set_meta("n2", b"1")

    written = await asyncio.gather(
        commits.commit(writing("n0")), commits.commit(writing("n1")), commits.commit(last)
    )
    assert written == [True, True, True]
    assert seen == [False]
    assert all(outside_sees(path, f"n{i}") for i in range(3))


async def test_a_failing_outcome_fails_alone_and_leaves_nothing_half_written(
    path: Path, commits: LoopCommits
) -> None:
    def broken(store: Store) -> None:
        with store.transaction():
            store.set_meta("broken", b"half")
            store.set_meta("broken", b"x", replace=False)
            raise sqlite3.IntegrityError("this outcome cannot be written")

    first, failing, last = await asyncio.gather(
        commits.commit(writing("first")),
        commits.commit(broken),
        commits.commit(writing("last")),
        return_exceptions=True,
    )
    assert (first, last) == (True, True)
    assert isinstance(failing, sqlite3.IntegrityError)
    assert (outside_sees(path, "first"), outside_sees(path, "last")) == (True, True)
    assert not outside_sees(path, "broken")


async def test_another_writer_holding_the_lock_leaves_them_to_the_waiting_thread(
    path: Path, commits: LoopCommits
) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            started = asyncio.get_running_loop().time()
            written = await asyncio.gather(
                commits.commit(writing("a")), commits.commit(writing("b"))
            )
            waited = asyncio.get_running_loop().time() - started
        finally:
            other.execute("ROLLBACK")
    assert written == [False, False]
    assert waited < 0.5  # refused at once: the loop never waits for the lock
    assert not outside_sees(path, "a") and not outside_sees(path, "b")


async def test_an_outcome_that_cannot_be_written_for_any_reason_is_its_callers_error(
    commits: LoopCommits,
) -> None:
    def wrong(store: Store) -> None:
        raise ValueError("not a store fault")

    with pytest.raises(ValueError, match="not a store fault"):
        await asyncio.wait_for(commits.commit(wrong), timeout=2)


async def test_a_shared_commit_undone_by_any_error_leaves_each_its_own_outcome(
    path: Path, commits: LoopCommits
) -> None:
    def wrong(store: Store) -> None:
        raise ValueError("not a store fault")

    first, failing = await asyncio.wait_for(
        asyncio.gather(
            commits.commit(writing("first")), commits.commit(wrong), return_exceptions=True
        ),
        timeout=2,
    )
    assert first is True and isinstance(failing, ValueError)
    assert outside_sees(path, "first")
