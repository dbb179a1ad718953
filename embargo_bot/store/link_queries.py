"""Link checks and `release`: the latest check per watch, its alerts, and the release mark.

A check, the alert it calls for and the lease it renews are one commit: a crash cannot
record an alert as sent and lose its stage, nor send it twice after a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from embargo_bot.domain.link_watch import LinkWatch, SeenCheck, Watch
from embargo_bot.domain.packs import NewStage, PackState, StageState
from embargo_bot.domain.times import from_storage, to_storage
from embargo_bot.store.instance_queries import InstanceQueries
from embargo_bot.store.rows import split_keys
from embargo_bot.store.tables import link_watches, packs, stages


class LinkQueries(InstanceQueries):
    def link_watches(self, pack_id: str) -> list[LinkWatch]:
        query = (
            select(link_watches)
            .where(link_watches.c.pack_id == pack_id)
            .order_by(link_watches.c.checked_at)
        )
        return [
            LinkWatch(
                pack_id=row.pack_id,
                watch=Watch(row.watch),
                checked_at=from_storage(row.checked_at),
                seen=row.seen,
                status=row.status,
                live=bool(row.live),
                checks=row.checks,
                alerts=split_keys(row.alerts),
            )
            for row in self._rows(query)
        ]

    def link_watch(self, pack_id: str, watch: Watch) -> LinkWatch | None:
        for found in self.link_watches(pack_id):
            if found.watch is watch:
                return found
        return None

    def record_link_check(
        self,
        pack_id: str,
        watch: Watch,
        check: SeenCheck,
        *,
        alert: str | None = None,
        alert_stage: NewStage | None = None,
        lease: tuple[int, str, datetime] | None = None,
    ) -> None:
        """Keep `check` as the watch's latest; with `alert`, note it sent and add its stage."""
        before = self.link_watch(pack_id, watch)
        alerts = list(before.alerts if before else ())
        if alert is not None and alert not in alerts:
            alerts.append(alert)
        values = {
            "checked_at": to_storage(check.checked_at),
            "seen": check.seen,
            "status": check.status,
            "live": int(check.live),
            "checks": (before.checks if before else 0) + 1,
            "alerts": ",".join(alerts),
        }
        insert = self._upsert(link_watches).values(pack_id=pack_id, watch=watch.value, **values)
        with self._write() as connection:
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[link_watches.c.pack_id, link_watches.c.watch], set_=values
                )
            )
            if alert_stage is not None and (before is None or alert not in before.alerts):
                self._insert_stages(connection, pack_id, [alert_stage])
            if lease is not None:
                stage_id, owner, until = lease
                connection.execute(
                    update(stages)
                    .where(
                        stages.c.id == stage_id,
                        stages.c.owner == owner,
                        stages.c.state == StageState.SENDING.value,
                    )
                    .values(lease_until=to_storage(until))
                )

    def release(self, pack_id: str, by: str, now: datetime) -> bool:
        """Mark the live email to go without the check; False if already marked or closed."""
        with self._write() as connection:
            self._lock_pack(connection, pack_id)
            changed = connection.execute(
                update(packs)
                .where(
                    packs.c.id == pack_id,
                    packs.c.state == PackState.ACTIVE.value,
                    packs.c.released_at.is_(None),
                )
                .values(released_at=to_storage(now), released_by=by)
            ).rowcount
        return changed == 1
