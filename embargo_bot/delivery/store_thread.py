"""Store calls off the event loop: one dedicated thread, with a ``Store`` of its own.

A slow or restarting database must not stall the event loop, where every SMTP
session of every stage runs: a stalled loop lets relays time the sessions out.
A ``Store`` is for one thread, so this one is opened, used and closed only on
its own single worker thread, and calls queue for it in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from embargo_bot.store import Store

T = TypeVar("T")


class StoreThread:
    def __init__(self, open_store: Callable[[], Store]) -> None:
        self._open_store = open_store
        self._store: Store | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embargo-store")
        self._closed = False

    async def call(self, work: Callable[[Store], T]) -> T:
        """``work(store)`` on the store's thread; the loop goes on meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, work)

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


async def on_store(thread: StoreThread | None, store: Store, work: Callable[[Store], T]) -> T:
    """``work`` on ``thread`` if there is one, else on ``store`` here (tests without one)."""
    if thread is None:
        return work(store)
    return await thread.call(work)
