"""A rate limit shared by every instance: the relay account's, not one process's.

The next free send slot is one row. Taking a slot reads and advances it in one
short transaction: on PostgreSQL the row is locked (``SELECT … FOR UPDATE``),
on SQLite the write lock is taken up front (``BEGIN IMMEDIATE``), so two
instances never get the same slot.
"""

from __future__ import annotations

from sqlalchemy import select, update

from embargo_bot.store.instance_queries import InstanceQueries
from embargo_bot.store.tables import rate_slots


class RateQueries(InstanceQueries):
    def take_rate_slot(self, name: str, now: float, interval: float) -> float:
        """Take the next send slot of rate ``name`` (seconds since the epoch, never before
        ``now``) and move the next one ``interval`` seconds after it."""
        slot_of = select(rate_slots.c.next_at).where(rate_slots.c.name == name).with_for_update()
        with self._write() as connection:
            next_at = connection.execute(slot_of).scalar()
            if next_at is None:
                connection.execute(
                    self._upsert(rate_slots)
                    .values(name=name, next_at=now)
                    .on_conflict_do_nothing(index_elements=[rate_slots.c.name])
                )
                next_at = connection.execute(slot_of).scalar_one()
            slot = max(now, float(next_at))
            connection.execute(
                update(rate_slots).where(rate_slots.c.name == name).values(next_at=slot + interval)
            )
        return slot
