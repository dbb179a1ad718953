"""Instances of the service: heartbeats, who is alive, and taking over from the dead.

Each running service records a heartbeat under its owner id (the one it
claims stages with) every few seconds. One whose heartbeat is older than
``stale_after`` is taken for dead (killed, its host down, cut off from the
database): any other instance may then put its stages back to be claimed
afresh. That is sooner than waiting for each stage's lease to run out, and
works for instances on other hosts, where no process can be checked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from embargo_bot.domain.packs import Stage, StageState
from embargo_bot.domain.times import from_storage, to_storage
from embargo_bot.store import rows
from embargo_bot.store.delivery_queries import DeliveryQueries
from embargo_bot.store.tables import STAGE_COLUMNS, instances, stages


@dataclass(frozen=True)
class InstanceStatus:
    """A live instance, when it last said so, and the stages it is sending."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    holds: tuple[Stage, ...] = ()


class InstanceQueries(DeliveryQueries):
    def record_heartbeat(self, instance: str, now: datetime, *, host: str, pid: int) -> None:
        """Say this instance is alive at ``now``; the first heartbeat registers it."""
        stamp = to_storage(now)
        insert = self._upsert(instances).values(
            id=instance, host=host, pid=pid, started_at=stamp, heartbeat_at=stamp
        )
        with self._write() as connection:
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[instances.c.id],
                    set_={"heartbeat_at": stamp, "stopped_at": None},
                )
            )

    def instance_stopped(self, instance: str, now: datetime) -> None:
        """A clean stop: the instance is neither live nor dead from now on."""
        with self._write() as connection:
            connection.execute(
                update(instances)
                .where(instances.c.id == instance, instances.c.stopped_at.is_(None))
                .values(stopped_at=to_storage(now))
            )

    def live_instances(self, now: datetime, *, stale_after: timedelta) -> list[InstanceStatus]:
        """Instances whose heartbeat is recent, oldest first, with the stages each holds."""
        cutoff = to_storage(now - stale_after)
        found = self._rows(
            select(
                instances.c.id,
                instances.c.host,
                instances.c.pid,
                instances.c.started_at,
                instances.c.heartbeat_at,
            )
            .where(instances.c.stopped_at.is_(None), instances.c.heartbeat_at >= cutoff)
            .order_by(instances.c.started_at, instances.c.id)
        )
        held: dict[str, list[Stage]] = defaultdict(list)
        sending = self._rows(
            select(*STAGE_COLUMNS)
            .where(stages.c.state == StageState.SENDING.value, stages.c.owner.is_not(None))
            .order_by(stages.c.due_at, stages.c.id)
        )
        for row in sending:
            stage = rows.stage(row)
            held[str(stage.owner)].append(stage)
        return [
            InstanceStatus(
                id=instance_id,
                host=host,
                pid=int(pid),
                started_at=from_storage(started_at),
                heartbeat_at=from_storage(heartbeat_at),
                holds=tuple(held.get(instance_id, ())),
            )
            for instance_id, host, pid, started_at, heartbeat_at in found
        ]

    def dead_instances(self, now: datetime, *, stale_after: timedelta) -> list[str]:
        """Instances that stopped sending heartbeats without stopping cleanly."""
        found = self._rows(
            select(instances.c.id)
            .where(
                instances.c.stopped_at.is_(None),
                instances.c.heartbeat_at < to_storage(now - stale_after),
            )
            .order_by(instances.c.id)
        )
        return [row[0] for row in found]

    def reclaim_from_dead(self, now: datetime, *, stale_after: timedelta) -> int:
        """Put back the stages of instances whose heartbeat is stale (or that stopped)."""
        gone = select(instances.c.id).where(
            or_(
                instances.c.stopped_at.is_not(None),
                instances.c.heartbeat_at < to_storage(now - stale_after),
            )
        )
        return self._put_back(stages.c.owner.in_(gone))
