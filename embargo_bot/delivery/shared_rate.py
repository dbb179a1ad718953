"""The relay account's rate limit, held for all instances together through the store.

Each send slot is taken from the store in one short transaction (see
``store.rate_queries``). That call blocks, so it runs on a thread of its own
with a ``Store`` of its own (a ``Store`` is for one thread): a slow database
delays the next slot, never the event loop and the SMTP sessions on it.
Slots are wall-clock times, as the relay counts: the hosts' clocks must agree,
as they must for the lift anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from embargo_bot.store import Store

# The relay account's rate, whoever sends: one name for the only relay there is.
RELAY = "relay"


class SharedSlots:
    """A ``pacing.SlotBook`` over the store, on a dedicated thread and connection."""

    def __init__(self, open_store: Callable[[], Store], name: str = RELAY) -> None:
        self._open_store = open_store
        self._name = name
        self._store: Store | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embargo-rate")

    async def take(self, interval: float) -> float:
        loop = asyncio.get_running_loop()
        slot = await loop.run_in_executor(self._thread, self._take, interval)
        return max(0.0, slot - time.time())

    def _take(self, interval: float) -> float:
        if self._store is None:
            self._store = self._open_store()
        return self._store.take_rate_slot(self._name, time.time(), interval)

    def close(self) -> None:
        self._thread.submit(self._close).result()
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
