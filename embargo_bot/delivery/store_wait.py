"""While a stage sends: waiting out a database server that went away (restarted, cut off).

Nothing is handed to the relay while the database cannot record its outcome,
and an outcome the relay gave meanwhile is kept in memory and its commit tried
again with backoff until the database takes it: nothing lost, nothing recorded
twice, and no message sent again only because its outcome could not be written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from embargo_bot.delivery.store_faults import FaultLog, next_wait
from embargo_bot.store import STORE_FAULTS, is_connection_lost

T = TypeVar("T")


class DatabaseWatch:
    """Whether the database can be written, as one stage's workers and watcher find it."""

    def __init__(self, faults: FaultLog, stop: asyncio.Event) -> None:
        self._faults = faults
        self._stop = stop
        self.ok = asyncio.Event()
        self.ok.set()

    def lost(self, exc: Exception, doing: str) -> bool:
        """Note a fault; False if it is not the server going away (the caller handles it)."""
        if not is_connection_lost(exc):
            return False
        self.ok.clear()
        self._faults.lost(exc, doing)
        return True

    def back(self) -> None:
        if not self.ok.is_set():
            self.ok.set()
            self._faults.back()

    async def persist(self, doing: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call``, tried again with backoff while the database server is away.

        Gives up (raises) only when the service is stopping: then the message is
        left pending and may go twice, which is better than holding up the stop.
        """
        wait = 0.0
        while True:
            try:
                result = await call()
            except STORE_FAULTS as exc:
                if self._stop.is_set() or not self.lost(exc, doing):
                    raise
                wait = next_wait(wait)
                await asyncio.sleep(wait)
                continue
            self.back()
            return result

    async def until_back(self, *also: asyncio.Event) -> None:
        """Wait for the database, or for any of ``also`` (a stop, a halt)."""
        waits = [asyncio.ensure_future(event.wait()) for event in (self.ok, *also)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
