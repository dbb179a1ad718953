"""Packs and their versions: queue, clear, reschedule, amend and withdraw.

Each change is one transaction, conditional on the state the caller checked
(``expected_*``), so two officials acting at once cannot both succeed on a
stale view. A change partners must hear about adds its follow-up stage in the
same transaction, and only if someone may already hold the notice.

Every transaction that reads a pack's state and then writes by it locks the
pack's row first (``_lock_pack``): on PostgreSQL that makes such writers,
and the claims of the pack's stages, take turns, as SQLite's one write lock
makes everything take turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, exists, func, literal, or_, select, update

from embargo_bot.domain.errors import NotFoundError
from embargo_bot.domain.outcomes import AMBIGUOUS
from embargo_bot.domain.packs import (
    HOLDING_KINDS,
    DeliveryState,
    MovedWave,
    NewStage,
    Pack,
    PackState,
    PackVersion,
    StageKind,
    StageState,
)
from embargo_bot.domain.times import to_storage
from embargo_bot.store import rows
from embargo_bot.store.material_queries import MaterialQueries, SealedContent
from embargo_bot.store.tables import (
    PACK_COLUMNS,
    PACK_FROM,
    VERSION_COLUMNS,
    attempts,
    deliveries,
    pack_versions,
    packs,
    stages,
)

_HOLDING = tuple(kind.value for kind in HOLDING_KINDS)


def may_hold() -> ColumnElement[bool]:
    """A delivery whose partner may hold the embargoed material.

    Sent; or still pending, but the relay may have taken it (an ambiguous
    attempt), or its stage started and will not send it now (a crash between
    the relay's "250" and our commit leaves exactly this). Follow-ups go to all
    of them: a withdrawal that misses one holder is worse than one to a listed
    partner not yet sent it.
    """
    ambiguous = exists().where(
        attempts.c.stage_id == deliveries.c.stage_id,
        attempts.c.email == deliveries.c.email,
        attempts.c.reply.like(f"%{AMBIGUOUS}%"),
    )
    pack_ended = exists().where(
        packs.c.id == stages.c.pack_id, packs.c.state != PackState.ACTIVE.value
    )
    abandoned = exists().where(
        stages.c.id == deliveries.c.stage_id,
        stages.c.started_at.is_not(None),
        or_(
            stages.c.state.not_in([StageState.SCHEDULED.value, StageState.SENDING.value]),
            pack_ended,
        ),
    )
    return or_(
        deliveries.c.state == DeliveryState.SENT.value,
        and_(deliveries.c.state == DeliveryState.PENDING.value, or_(ambiguous, abandoned)),
    )


class PackQueries(MaterialQueries):
    def add_pack(
        self,
        pack: Pack,
        version: PackVersion,
        content: SealedContent,
        stages: Sequence[NewStage],
    ) -> bool:
        """Store a new pack, its first version and its stages; False if the id is taken."""
        with self._write() as connection:
            added = connection.execute(
                self._upsert(packs)
                .values(
                    id=pack.id,
                    reference=pack.reference,
                    classification=pack.classification.value,
                    contact=pack.contact,
                    lift_at=to_storage(pack.lift_at),
                    lift_seq=pack.lift_seq,
                    list_keys=",".join(pack.list_keys),
                    version=pack.version,
                    state=pack.state.value,
                    created_at=to_storage(pack.created_at),
                    created_by=pack.created_by,
                    needs_clearance=int(pack.needs_clearance),
                )
                .on_conflict_do_nothing(index_elements=[packs.c.id])
                # An INSERT's row count is kept only when asked for.
                .execution_options(preserve_rowcount=True)
            ).rowcount
            if not added:
                return False
            self._insert_version(connection, version, content)
            self._insert_stages(connection, pack.id, stages)
        return True

    def _insert_version(
        self, connection: Connection, version: PackVersion, content: SealedContent
    ) -> None:
        connection.execute(
            pack_versions.insert().values(
                pack_id=version.pack_id,
                version=version.version,
                title=version.title,
                url=version.url,
                pdf_name=version.pdf_name,
                changed=",".join(version.changed),
                note=version.note,
                changed_by=version.changed_by,
                changed_at=to_storage(version.changed_at),
                pdf_sealed=content.pdf,
                release_sealed=content.release,
                social_sealed=content.social,
            )
        )

    def _insert_stages(
        self, connection: Connection, pack_id: str, new: Sequence[NewStage]
    ) -> list[int]:
        ids = []
        for stage in new:
            result = connection.execute(
                stages.insert().values(
                    pack_id=pack_id,
                    kind=stage.kind.value,
                    wave=stage.wave,
                    list_keys=",".join(stage.list_keys),
                    due_at=to_storage(stage.due_at),
                    state=(StageState.HELD if stage.held else StageState.SCHEDULED).value,
                    base_lift_seq=stage.base_lift_seq,
                    base_version=stage.base_version,
                    old_lift_at=rows.optional_storage(stage.old_lift_at),
                    test_address=stage.test_address,
                    test_of=",".join(kind.value for kind in stage.test_of),
                    report_of=stage.report_of,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        return ids

    def _lock_pack(self, connection: Connection, pack_id: str) -> None:
        connection.execute(select(packs.c.id).where(packs.c.id == pack_id).with_for_update())

    def get_pack(self, pack_id: str) -> Pack:
        row = self._first(select(*PACK_COLUMNS).select_from(PACK_FROM).where(packs.c.id == pack_id))
        if row is None:
            raise NotFoundError(f"no pack {pack_id!r}; `embargo-bot list` shows the packs")
        return rows.pack(row)

    def packs(self) -> list[Pack]:
        query = select(*PACK_COLUMNS).select_from(PACK_FROM).order_by(packs.c.lift_at, packs.c.id)
        return [rows.pack(row) for row in self._rows(query)]

    def pack_state(self, pack_id: str) -> tuple[PackState, int, int]:
        """The pack's state, version and lift sequence: what a sending stage watches."""
        row = self._first(
            select(packs.c.state, packs.c.version, packs.c.lift_seq).where(packs.c.id == pack_id)
        )
        if row is None:
            raise NotFoundError(f"no pack {pack_id!r}; `embargo-bot list` shows the packs")
        return PackState(row[0]), int(row[1]), int(row[2])

    def versions(self, pack_id: str) -> list[PackVersion]:
        query = (
            select(*VERSION_COLUMNS)
            .where(pack_versions.c.pack_id == pack_id)
            .order_by(pack_versions.c.version)
        )
        return [rows.version(row) for row in self._rows(query)]

    def approve(self, pack_id: str, by: str, now: datetime) -> bool:
        with self._write() as connection:
            changed = connection.execute(
                update(packs)
                .where(
                    packs.c.id == pack_id,
                    packs.c.state == PackState.ACTIVE.value,
                    packs.c.needs_clearance == 1,
                    packs.c.cleared_at.is_(None),
                    packs.c.created_by != by,
                )
                .values(cleared_at=to_storage(now), cleared_by=by)
            ).rowcount
        return changed == 1

    def reschedule(
        self,
        pack: Pack,
        *,
        lift_at: datetime,
        moved_waves: Sequence[MovedWave],
        new_waves: Sequence[NewStage],
        follow_up: NewStage,
    ) -> bool:
        """Move the lift and the given unstarted waves; False if anything changed meanwhile.

        No stage is cancelled and the pack's lists stay as they are: a wave that
        gives up lists hands them to ``new_waves``.
        """
        with self._write() as connection:
            if not self._still(connection, pack):
                return False
            ids = [wave.stage_id for wave in moved_waves]
            unstarted = connection.execute(
                select(func.count())
                .select_from(stages)
                .where(
                    stages.c.id.in_(ids),
                    stages.c.pack_id == pack.id,
                    stages.c.state == StageState.SCHEDULED.value,
                    stages.c.expanded == 0,
                )
            ).scalar_one()
            if unstarted != len(set(ids)):
                return False
            connection.execute(
                update(packs)
                .where(packs.c.id == pack.id)
                .values(lift_at=to_storage(lift_at), lift_seq=packs.c.lift_seq + 1)
            )
            connection.execute(
                update(stages)
                .where(stages.c.pack_id == pack.id, stages.c.kind == StageKind.LIVE.value)
                .values(due_at=to_storage(lift_at))
            )
            for wave in moved_waves:
                connection.execute(
                    update(stages)
                    .where(stages.c.id == wave.stage_id)
                    .values(due_at=to_storage(wave.due_at), list_keys=",".join(wave.list_keys))
                )
            self._insert_stages(connection, pack.id, new_waves)
            self._add_follow_up_if_notified(connection, pack.id, follow_up)
        return True

    def amend(
        self,
        pack: Pack,
        version: PackVersion,
        content: SealedContent,
        follow_up: NewStage,
    ) -> bool:
        """Store a new version; False if the pack changed meanwhile."""
        with self._write() as connection:
            if not self._still(connection, pack):
                return False
            self._insert_version(connection, version, content)
            connection.execute(
                update(packs).where(packs.c.id == pack.id).values(version=version.version)
            )
            self._add_follow_up_if_notified(connection, pack.id, follow_up)
        return True

    def withdraw(
        self, pack: Pack, *, by: str, reason: str | None, now: datetime, follow_up: NewStage
    ) -> bool:
        """Cancel the pack and every stage not yet sent; tell holders, if any."""
        with self._write() as connection:
            if not self._still(connection, pack):
                return False
            stamp = to_storage(now)
            connection.execute(
                update(packs)
                .where(packs.c.id == pack.id)
                .values(
                    state=PackState.CANCELLED.value,
                    cancelled_at=stamp,
                    cancelled_by=by,
                    cancel_reason=reason,
                )
            )
            connection.execute(
                update(stages)
                .where(stages.c.pack_id == pack.id, stages.c.state == StageState.SCHEDULED.value)
                .values(
                    state=StageState.CANCELLED.value, finished_at=stamp, detail="pack withdrawn"
                )
            )
            self._add_follow_up_if_notified(connection, pack.id, follow_up)
        return True

    def may_hold_notice(self, pack_id: str) -> bool:
        """Whether anyone may hold the embargoed material: sent (maybe), or being sent it."""
        with self._read() as connection:
            return self._may_hold_notice(connection, pack_id)

    def _may_hold_notice(self, connection: Connection, pack_id: str) -> bool:
        sent = exists().where(
            deliveries.c.pack_id == pack_id, may_hold(), deliveries.c.kind.in_(_HOLDING)
        )
        sending = exists().where(
            stages.c.pack_id == pack_id,
            stages.c.state == StageState.SENDING.value,
            stages.c.kind.in_(_HOLDING),
        )
        return bool(connection.execute(select(or_(sent, sending))).scalar())

    def _add_follow_up_if_notified(
        self, connection: Connection, pack_id: str, follow_up: NewStage
    ) -> None:
        if self._may_hold_notice(connection, pack_id):
            self._insert_stages(connection, pack_id, [follow_up])

    def _still(self, connection: Connection, pack: Pack) -> bool:
        """The pack is active and unchanged since the caller read it, and not yet live."""
        self._lock_pack(connection, pack.id)
        live_scheduled = exists().where(
            stages.c.pack_id == pack.id,
            stages.c.kind == StageKind.LIVE.value,
            stages.c.state == StageState.SCHEDULED.value,
        )
        row = connection.execute(
            select(literal(1)).where(
                and_(
                    packs.c.id == pack.id,
                    packs.c.state == PackState.ACTIVE.value,
                    packs.c.version == pack.version,
                    packs.c.lift_seq == pack.lift_seq,
                    live_scheduled,
                )
            )
        ).first()
        return row is not None
