"""The relay account's rate limit, held for all instances together through the store.

Each send slot is taken from the store in one short transaction (see
``store.rate_queries``), on the instance's store thread: a slow database
delays the next slot, never the event loop and the SMTP sessions on it.
Slots are wall-clock times, as the relay counts: the hosts' clocks must agree,
as they must for the lift anyway.
"""

from __future__ import annotations

import time

from embargo_bot.delivery.store_thread import StoreThread

# The relay account's rate, whoever sends: one name for the only relay there is.
RELAY = "relay"


class SharedSlots:
    """A ``pacing.SlotBook`` over the store."""

    def __init__(self, thread: StoreThread, name: str = RELAY) -> None:
        self._thread = thread
        self._name = name

    async def take(self, interval: float) -> float:
        slot = await self._thread.call(
            lambda store: store.take_rate_slot(self._name, time.time(), interval)
        )
        return max(0.0, slot - time.time())
