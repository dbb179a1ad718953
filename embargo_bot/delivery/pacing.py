"""Pacing sends: a relay's rate limit, and a pause while the relay is unreachable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

# aiosmtplib holds about three copies of a message while it sends it (line
# endings normalised, the end-of-data marker added, the transport's buffer),
# and normalising the line endings peaks at about 4.5 times the message (a
# bytes object a line, and a buffer of each for joining them). Bounding the
# bytes in flight keeps a 20 MB attachment (27 MB a message: one in flight)
# from multiplying by the number of connections, while small messages still
# use every connection.
IN_FLIGHT_BYTES = 32 * 1024 * 1024


class SlotBook(Protocol):
    """Send slots shared with other instances (through the store): see ``shared_rate``."""

    async def take(self, interval: float) -> float:
        """Take the next slot ``interval`` after the last one taken; the seconds to wait."""
        ...


class RateLimiter:
    """At most ``per_minute`` sends a minute, evenly spaced, shared by every connection.

    Relays such as Microsoft 365 cap a mailbox at 30 messages a minute;
    spacing sends evenly keeps under the cap without bursts it would refuse.
    The cap is the relay account's: with a ``book`` the slots are shared with
    every other instance that sends as that account.
    """

    def __init__(self, per_minute: int | None, book: SlotBook | None = None) -> None:
        self._interval = 0.0 if per_minute is None else 60.0 / per_minute
        self._next_slot = 0.0
        self._last_handed = -float("inf")
        self._book = book

    @property
    def limited(self) -> bool:
        return bool(self._interval)

    async def next_wait(self) -> float:
        """Take the next send slot, this instance's or the shared one; the seconds to wait."""
        if not self._interval:
            return 0.0
        if self._book is None:
            return self.reserve()
        return await self._book.take(self._interval)

    def until_handing(self) -> float:
        """The seconds to wait before handing a message to the relay, taking that moment.

        A slot is taken before the work of sending (the store, the budget, the
        message's own headers); a message held up in that work must not then reach
        the relay hard on the heels of the next one, which the relay would count as
        a burst. So this instance never hands two messages closer than the spacing:
        a delay only ever makes the next one later."""
        if not self._interval:
            return 0.0
        now = time.monotonic()
        handing = max(now, self._last_handed + self._interval)
        self._last_handed = handing
        return handing - now

    def reserve(self) -> float:
        """Take the next send slot; the seconds to wait for it."""
        if not self._interval:
            return 0.0
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        return slot - now


class RelayGate:
    """Closed while the relay cannot be reached, so connections wait instead of hammering it."""

    def __init__(self) -> None:
        self._open_at = 0.0
        self.failures = 0

    @property
    def is_closed(self) -> bool:
        return time.monotonic() < self._open_at

    def close_for(self, seconds: float) -> None:
        """Close after a failure; failures of sends begun before it closed do not count again."""
        if self.is_closed:
            return
        self.failures += 1
        self._open_at = time.monotonic() + seconds

    def reopen(self) -> None:
        self.failures = 0

    def remaining(self) -> float:
        """Seconds until the relay may be tried again (0 when open)."""
        return max(0.0, self._open_at - time.monotonic())


class ByteBudget:
    """Bounds the bytes of the messages in flight at once, across every connection."""

    def __init__(self, limit: int = IN_FLIGHT_BYTES) -> None:
        self._limit = limit
        self._used = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Wait for room for a message of ``size`` bytes; one message always fits alone."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._used or self._used + size <= self._limit)
            self._used += size
        try:
            yield
        finally:
            async with self._changed:
                self._used -= size
                self._changed.notify_all()
