"""Stages: what is due, and who is sending it.

A stage is claimed with one conditional UPDATE that holds every rule about
whether it may start, so two instances can never both start it:

- it is scheduled and due;
- its pack is active (a withdrawal may go from a withdrawn pack) and cleared,
  where clearance is needed (a test send needs none; a delivery report goes
  whatever the pack's state, since it only tells the official what happened);
- a notice wave waits for earlier waves, so an address on two waves' lists
  gets the notice once, from the first;
- a follow-up (changed, updated, withdrawn) waits while anyone is being given
  the material, and for earlier follow-ups, so "who holds the notice" is
  settled when it starts.

On PostgreSQL the claim first locks its pack's row, as every change to a
pack does, so the rules above see the other stages as they are committed;
reclaiming skips stages whose rows another instance has locked (it is
renewing or finishing them) rather than waiting on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select, text, update

from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.packs import NewStage, PackState, Stage, StageKind, StageState
from embargo_bot.domain.times import to_storage
from embargo_bot.store import rows
from embargo_bot.store.pack_queries import PackQueries
from embargo_bot.store.tables import STAGE_COLUMNS, packs, stages

# One statement, so that every rule is checked against the same rows it changes.
_CLAIM = text(f"""
UPDATE stages SET state = 'sending', owner = :owner, lease_until = :lease_until,
    started_at = COALESCE(started_at, :now)
WHERE id = :stage_id AND state = 'scheduled' AND due_at <= :now
AND (stages.kind IN ('{StageKind.REPORT}', '{StageKind.ALERT}') OR EXISTS (
    SELECT 1 FROM packs p WHERE p.id = stages.pack_id
    AND (p.state = '{PackState.ACTIVE}'
         OR (p.state = '{PackState.CANCELLED}' AND stages.kind = '{StageKind.WITHDRAWN}'))
    AND (p.needs_clearance = 0 OR p.cleared_at IS NOT NULL OR stages.kind = '{StageKind.TEST}')
))
AND NOT EXISTS (
    SELECT 1 FROM stages other WHERE other.pack_id = stages.pack_id AND other.id <> stages.id
    AND (
        (stages.kind = 'notice' AND other.kind = 'notice'
         AND other.state IN ('scheduled', 'sending')
         AND (other.due_at < stages.due_at
              OR (other.due_at = stages.due_at AND other.id < stages.id)))
        OR (stages.kind IN ('changed', 'updated', 'withdrawn')
            AND other.state = 'sending' AND other.kind IN ('notice', 'updated', 'changed'))
        OR (stages.kind IN ('changed', 'updated', 'withdrawn')
            AND other.kind IN ('changed', 'updated', 'withdrawn') AND other.id < stages.id
            AND other.state IN ('scheduled', 'sending'))
    )
)
""")


class StageQueries(PackQueries):
    def stages(self, pack_id: str) -> list[Stage]:
        query = select(*STAGE_COLUMNS).where(stages.c.pack_id == pack_id)
        return [rows.stage(row) for row in self._rows(query.order_by(stages.c.due_at, stages.c.id))]

    def stage(self, stage_id: int) -> Stage:
        row = self._first(select(*STAGE_COLUMNS).where(stages.c.id == stage_id))
        if row is None:
            raise StoreError(f"no stage {stage_id}")
        return rows.stage(row)

    def stage_of(self, pack_id: str, kind: StageKind) -> Stage:
        """The pack's only (or first) stage of a kind: for live, which there is one of."""
        for stage in self.stages(pack_id):
            if stage.kind is kind:
                return stage
        raise StoreError(f"pack {pack_id!r} has no {kind} stage")

    def add_stage(self, pack_id: str, stage: NewStage) -> int:
        with self._write() as connection:
            return self._insert_stages(connection, pack_id, [stage])[0]

    def runnable_stages(self) -> list[Stage]:
        """Scheduled stages that could start at their time: cleared, or needing no clearance."""
        query = (
            select(*STAGE_COLUMNS)
            .join(packs, packs.c.id == stages.c.pack_id)
            .where(
                stages.c.state == StageState.SCHEDULED.value,
                or_(
                    packs.c.needs_clearance == 0,
                    packs.c.cleared_at.is_not(None),
                    stages.c.kind.in_(
                        [StageKind.TEST.value, StageKind.REPORT.value, StageKind.ALERT.value]
                    ),
                ),
            )
            .order_by(stages.c.due_at, stages.c.id)
        )
        return [rows.stage(row) for row in self._rows(query)]

    def held_stages(self) -> list[Stage]:
        """Notice waves' shares held back for lists that were invalid at their time."""
        query = (
            select(*STAGE_COLUMNS)
            .where(stages.c.state == StageState.HELD.value)
            .order_by(stages.c.due_at, stages.c.id)
        )
        return [rows.stage(row) for row in self._rows(query)]

    def hold_stage(self, stage_id: int, owner: str, detail: str) -> bool:
        """Put a claimed notice wave on hold: none of its lists could be used at its time."""
        with self._write() as connection:
            held = connection.execute(
                update(stages)
                .where(
                    stages.c.id == stage_id,
                    stages.c.owner == owner,
                    stages.c.state == StageState.SENDING.value,
                )
                .values(state=StageState.HELD.value, owner=None, lease_until=None, detail=detail)
            ).rowcount
        return held == 1

    def release_held(self, stage_id: int) -> bool:
        """A held wave's lists are valid again: it may be claimed (its time has passed)."""
        with self._write() as connection:
            released = connection.execute(
                update(stages)
                .where(stages.c.id == stage_id, stages.c.state == StageState.HELD.value)
                .values(state=StageState.SCHEDULED.value)
            ).rowcount
        return released == 1

    def claim_stage(self, stage_id: int, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Take a stage for sending; False if it may not start yet or someone has it."""
        params = {
            "owner": owner,
            "lease_until": to_storage(lease_until),
            "now": to_storage(now),
            "stage_id": stage_id,
        }
        with self._write() as connection:
            pack_id = connection.execute(
                select(stages.c.pack_id).where(stages.c.id == stage_id)
            ).scalar()
            if pack_id is None:
                return False
            self._lock_pack(connection, pack_id)
            claimed = connection.execute(_CLAIM, params).rowcount
        return claimed == 1

    def renew_lease(self, stage_id: int, owner: str, lease_until: datetime) -> bool:
        with self._write() as connection:
            renewed = connection.execute(
                update(stages)
                .where(
                    stages.c.id == stage_id,
                    stages.c.owner == owner,
                    stages.c.state == StageState.SENDING.value,
                )
                .values(lease_until=to_storage(lease_until))
            ).rowcount
        return renewed == 1

    def release_stage(self, stage_id: int, owner: str) -> bool:
        """Hand a stage back unfinished (a clean stop), so the next start resumes it."""
        with self._write() as connection:
            released = connection.execute(
                update(stages)
                .where(
                    stages.c.id == stage_id,
                    stages.c.owner == owner,
                    stages.c.state == StageState.SENDING.value,
                )
                .values(state=StageState.SCHEDULED.value, owner=None, lease_until=None)
            ).rowcount
        return released == 1

    def reclaim_abandoned(self, now: datetime, dead_owners: Sequence[str] = ()) -> int:
        """Put back stages whose sender died: its lease ran out, or it is known dead."""
        abandoned = or_(stages.c.lease_until < to_storage(now), stages.c.owner.in_(dead_owners))
        return self._put_back(abandoned)

    def _put_back(self, abandoned: ColumnElement[bool]) -> int:
        """Sending stages matching ``abandoned`` back to scheduled, for any instance to claim.

        Rows are picked ``FOR UPDATE SKIP LOCKED`` (nothing on SQLite), so two
        instances reclaiming at once never wait on each other; the UPDATE's own
        conditions are what make it safe.
        """
        sending = stages.c.state == StageState.SENDING.value
        with self._write() as connection:
            picked = (
                connection.execute(
                    select(stages.c.id).where(sending, abandoned).with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not picked:
                return 0
            return connection.execute(
                update(stages)
                .where(stages.c.id.in_(picked), sending, abandoned)
                .values(state=StageState.SCHEDULED.value, owner=None, lease_until=None)
            ).rowcount

    def stage_owners(self) -> list[str]:
        query = (
            select(stages.c.owner)
            .distinct()
            .where(stages.c.state == StageState.SENDING.value, stages.c.owner.is_not(None))
        )
        return [row[0] for row in self._rows(query)]

    def finish_stage(
        self,
        stage_id: int,
        now: datetime,
        state: StageState,
        detail: str | None,
        *,
        owner: str | None = None,
        report: NewStage | None = None,
        held: bool = False,
    ) -> bool:
        """Close a stage: as its owner when sending, or straight from scheduled (a skip),
        or from held (its lists were still invalid at the lift, or the pack ended).

        ``report`` (the delivery report to the official) is added in the same
        commit, so a crash cannot finish a stage and lose its report.
        """
        expected = StageState.SCHEDULED if owner is None else StageState.SENDING
        if held:
            expected = StageState.HELD
        with self._write() as connection:
            pack_id = connection.execute(
                select(stages.c.pack_id).where(stages.c.id == stage_id)
            ).scalar()
            if pack_id is None:
                return False
            self._lock_pack(connection, pack_id)
            finished = connection.execute(
                update(stages)
                .where(
                    stages.c.id == stage_id,
                    stages.c.state == expected.value,
                    stages.c.owner.is_(None) if owner is None else stages.c.owner == owner,
                )
                .values(
                    state=state.value, finished_at=to_storage(now), detail=detail, lease_until=None
                )
            ).rowcount
            if finished and report is not None:
                self._insert_stages(connection, pack_id, [report])
            still_open = exists().where(
                stages.c.pack_id == pack_id,
                stages.c.state.in_(
                    [StageState.SCHEDULED.value, StageState.SENDING.value, StageState.HELD.value]
                ),
            )
            connection.execute(
                update(packs)
                .where(packs.c.id == pack_id, packs.c.state == PackState.ACTIVE.value, ~still_open)
                .values(state=PackState.DONE.value)
            )
        return finished == 1
