"""Store calls off the event loop: one dedicated thread, with a ``Store`` of its own.

A slow or restarting database must not stall the event loop, where every SMTP
session of every stage runs: a stalled loop lets relays time the sessions out.
A ``Store`` is for one thread, so this one is opened, used and closed only on
its own single worker thread, and calls queue for it in order.

Each connection of a stage records each message's outcome before it sends the
next. ``commit`` puts the outcomes that arrive while one commit runs into the
next one: a commit, and a wake of this thread, for several messages, not each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, TypeVar

from embargo_bot.store import Store

T = TypeVar("T")
log = logging.getLogger(__name__)


class StoreThread:
    def __init__(self, open_store: Callable[[], Store]) -> None:
        self._open_store = open_store
        self._store: Store | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embargo-store")
        self._closed = False
        # Commits waiting for the thread, and whether a job to take them is queued.
        self._lock = threading.Lock()
        self._waiting: list[_Commit] = []
        self._taking = False

    async def call(self, work: Callable[[Store], T]) -> T:
        """``work(store)`` on the store's thread; the loop goes on meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, work)

    async def commit(self, work: Callable[[Store], T], *, atomic: bool = False) -> T:
        """``work(store)`` on the store's thread, in one transaction with the commits
        that queued while the thread was busy; each caller gets its own result.

        If the shared commit fails, each is tried alone, so one caller's error is
        never another's and nothing is half written. ``atomic``: ``work`` is one
        transaction of its own, or one statement, so alone it runs as it is; a
        single statement on PostgreSQL then costs one round trip, not BEGIN, the
        statement and COMMIT.
        """
        loop = asyncio.get_running_loop()
        waiting = _Commit(work, loop.create_future(), atomic=atomic)
        with self._lock:
            self._waiting.append(waiting)
            start = not self._taking
            self._taking = True
        if start:
            self._thread.submit(self._take_commits, loop)
        return await waiting.done  # type: ignore[no-any-return]

    def _take_commits(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                group, self._waiting = self._waiting, []
                if not group:
                    self._taking = False
                    return
            if self._store is None:
                try:
                    self._store = self._open_store()
                except Exception as exc:  # each caller handles the fault as its own
                    for waiting in group:
                        waiting.fail(loop, exc)
                    continue
            self._commit(self._store, group, loop)

    @staticmethod
    def _commit(store: Store, group: list[_Commit], loop: asyncio.AbstractEventLoop) -> None:
        if len(group) > 1:
            results = in_one_commit(store, [waiting.work for waiting in group])
            if not isinstance(results, Exception):
                for waiting, result in zip(group, results, strict=True):
                    waiting.succeed(loop, result)
                return
        for waiting in group:
            try:
                with nullcontext() if waiting.atomic else store.transaction():
                    result = waiting.work(store)
            except Exception as exc:
                waiting.fail(loop, exc)
            else:
                waiting.succeed(loop, result)

    def _run(self, work: Callable[[Store], T]) -> T:
        if self._store is None:
            self._store = self._open_store()
        return work(self._store)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._thread.submit(self._close).result()
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class _Commit:
    """One caller's work for a shared commit, and the future it waits on."""

    def __init__(
        self, work: Callable[[Store], Any], done: asyncio.Future[Any], *, atomic: bool
    ) -> None:
        self.work = work
        self.done = done
        self.atomic = atomic

    def succeed(self, loop: asyncio.AbstractEventLoop, result: object) -> None:
        loop.call_soon_threadsafe(self._settle, result, None)

    def fail(self, loop: asyncio.AbstractEventLoop, exc: BaseException) -> None:
        loop.call_soon_threadsafe(self._settle, None, exc)

    def _settle(self, result: object, exc: BaseException | None) -> None:
        if self.done.done():  # the caller was cancelled (a stop): nobody waits for it
            return
        if exc is None:
            self.done.set_result(result)
        else:
            self.done.set_exception(exc)


def in_one_commit(store: Store, works: Sequence[Callable[[Store], Any]]) -> list[Any] | Exception:
    """Every work in one commit: their results, or what undid them all (nothing was
    written), for the caller to try each alone so that each gets its own outcome."""
    try:
        with store.transaction():
            return [work(store) for work in works]
    except Exception as exc:
        log.debug("a shared commit failed (%s); trying each alone", type(exc).__name__)
        return exc


async def commit_on_store(
    thread: StoreThread | None, store: Store, work: Callable[[Store], T], *, atomic: bool = False
) -> T:
    """``work`` in a commit shared with others on ``thread``, else on ``store`` here
    (``atomic``: see ``StoreThread.commit``)."""
    if thread is None:
        return work(store)
    return await thread.commit(work, atomic=atomic)


async def on_store(thread: StoreThread | None, store: Store, work: Callable[[Store], T]) -> T:
    """``work`` on ``thread`` if there is one, else on ``store`` here (tests without one)."""
    if thread is None:
        return work(store)
    return await thread.call(work)
