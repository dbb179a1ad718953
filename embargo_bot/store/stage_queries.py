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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.packs import NewStage, PackState, Stage, StageKind, StageState
from embargo_bot.domain.times import to_storage
from embargo_bot.store import rows
from embargo_bot.store.pack_queries import PackQueries
from embargo_bot.store.schema import STAGE_COLUMNS

_CLAIM = f"""
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
"""


class StageQueries(PackQueries):
    def stages(self, pack_id: str) -> list[Stage]:
        query = f"SELECT {STAGE_COLUMNS} FROM stages WHERE pack_id = ? ORDER BY due_at, id"
        return [rows.stage(row) for row in self._db.execute(query, (pack_id,))]

    def stage(self, stage_id: int) -> Stage:
        row = self._db.execute(
            f"SELECT {STAGE_COLUMNS} FROM stages WHERE id = ?", (stage_id,)
        ).fetchone()
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
        with self._write():
            return self._insert_stages(pack_id, [stage])[0]

    def runnable_stages(self) -> list[Stage]:
        """Scheduled stages that could start at their time: cleared, or needing no clearance."""
        query = (
            f"SELECT {', '.join('s.' + c.strip() for c in STAGE_COLUMNS.split(','))} "
            "FROM stages s JOIN packs p ON p.id = s.pack_id WHERE s.state = ? "
            "AND (p.needs_clearance = 0 OR p.cleared_at IS NOT NULL OR s.kind IN (?, ?, ?)) "
            "ORDER BY s.due_at, s.id"
        )
        params = (
            StageState.SCHEDULED.value,
            StageKind.TEST.value,
            StageKind.REPORT.value,
            StageKind.ALERT.value,
        )
        return [rows.stage(row) for row in self._db.execute(query, params)]

    def held_stages(self) -> list[Stage]:
        """Notice waves' shares held back for lists that were invalid at their time."""
        query = f"SELECT {STAGE_COLUMNS} FROM stages WHERE state = ? ORDER BY due_at, id"
        return [rows.stage(row) for row in self._db.execute(query, (StageState.HELD.value,))]

    def hold_stage(self, stage_id: int, owner: str, detail: str) -> bool:
        """Put a claimed notice wave on hold: none of its lists could be used at its time."""
        with self._write():
            held = self._db.execute(
                "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL, detail = ? "
                "WHERE id = ? AND owner = ? AND state = ?",
                (StageState.HELD.value, detail, stage_id, owner, StageState.SENDING.value),
            ).rowcount
        return held == 1

    def release_held(self, stage_id: int) -> bool:
        """A held wave's lists are valid again: it may be claimed (its time has passed)."""
        with self._write():
            released = self._db.execute(
                "UPDATE stages SET state = ? WHERE id = ? AND state = ?",
                (StageState.SCHEDULED.value, stage_id, StageState.HELD.value),
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
        with self._write():
            claimed = self._db.execute(_CLAIM, params).rowcount
        return claimed == 1

    def renew_lease(self, stage_id: int, owner: str, lease_until: datetime) -> bool:
        with self._write():
            renewed = self._db.execute(
                "UPDATE stages SET lease_until = ? WHERE id = ? AND owner = ? AND state = ?",
                (to_storage(lease_until), stage_id, owner, StageState.SENDING.value),
            ).rowcount
        return renewed == 1

    def release_stage(self, stage_id: int, owner: str) -> bool:
        """Hand a stage back unfinished (a clean stop), so the next start resumes it."""
        with self._write():
            released = self._db.execute(
                "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL "
                "WHERE id = ? AND owner = ? AND state = ?",
                (StageState.SCHEDULED.value, stage_id, owner, StageState.SENDING.value),
            ).rowcount
        return released == 1

    def reclaim_abandoned(self, now: datetime, dead_owners: Sequence[str] = ()) -> int:
        """Put back stages whose sender died: its lease ran out, or it is known dead."""
        back = (StageState.SCHEDULED.value, StageState.SENDING.value)
        with self._write():
            reclaimed = self._db.execute(
                "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL "
                "WHERE state = ? AND lease_until < ?",
                (*back, to_storage(now)),
            ).rowcount
            for owner in dead_owners:
                reclaimed += self._db.execute(
                    "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL "
                    "WHERE state = ? AND owner = ?",
                    (*back, owner),
                ).rowcount
        return reclaimed

    def stage_owners(self) -> list[str]:
        rows_ = self._db.execute(
            "SELECT DISTINCT owner FROM stages WHERE state = ? AND owner IS NOT NULL",
            (StageState.SENDING.value,),
        )
        return [row[0] for row in rows_]

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
        with self._write():
            finished = self._db.execute(
                "UPDATE stages SET state = ?, finished_at = ?, detail = ?, lease_until = NULL "
                "WHERE id = ? AND state = ? AND owner IS ?",
                (state.value, to_storage(now), detail, stage_id, expected.value, owner),
            ).rowcount
            if finished and report is not None:
                pack_id = self._db.execute(
                    "SELECT pack_id FROM stages WHERE id = ?", (stage_id,)
                ).fetchone()[0]
                self._insert_stages(pack_id, [report])
            self._db.execute(
                "UPDATE packs SET state = ? WHERE state = ? "
                "AND id = (SELECT pack_id FROM stages WHERE id = ?) AND NOT EXISTS "
                "(SELECT 1 FROM stages s WHERE s.pack_id = packs.id AND s.state IN (?, ?, ?))",
                (
                    PackState.DONE.value,
                    PackState.ACTIVE.value,
                    stage_id,
                    StageState.SCHEDULED.value,
                    StageState.SENDING.value,
                    StageState.HELD.value,
                ),
            )
        return finished == 1
