"""The messages of one sending stage, each ready now or at its retry time."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class DeliveryQueue(Generic[T]):
    """A queue several connections take from; a retried message comes back later.

    A connection may only stop when nothing is waiting and no other
    connection holds a message that might come back for a retry.
    """

    def __init__(self, ready: Iterable[tuple[float, T]]) -> None:
        self._order = itertools.count()
        self._heap = [(at, next(self._order), delivery) for at, delivery in ready]
        heapq.heapify(self._heap)
        self._taken = 0
        self._changed = asyncio.Condition()
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap) + self._taken

    async def take(self) -> T | None:
        """The next message once it is due; None when all are done or the queue is closed."""
        async with self._changed:
            while not self._closed:
                if self._heap:
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        self._taken += 1
                        return heapq.heappop(self._heap)[2]
                    # Woken early if something is put back or the queue closes.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=min(wait, 1.0))
                elif self._taken:
                    await self._changed.wait()
                else:
                    return None
            return None

    async def done(self, item: T, *, retry_at: float | None = None, again: T | None = None) -> None:
        """Finish with a message taken from the queue; with ``retry_at``, put it back
        (or ``again``, what is left of it to retry)."""
        async with self._changed:
            self._taken -= 1
            if retry_at is not None:
                back = item if again is None else again
                heapq.heappush(self._heap, (retry_at, next(self._order), back))
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
