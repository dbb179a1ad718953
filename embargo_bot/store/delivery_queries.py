"""Deliveries: each recipient of each stage, and what became of their message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from embargo_bot.domain.outcomes import Outcome
from embargo_bot.domain.packs import (
    HOLDING_KINDS,
    Attempt,
    Delivery,
    DeliveryState,
    Holder,
    NewDelivery,
    StageKind,
)
from embargo_bot.domain.times import to_storage
from embargo_bot.store import rows
from embargo_bot.store.pack_queries import MAY_HOLD
from embargo_bot.store.schema import ATTEMPT_COLUMNS, DELIVERY_COLUMNS
from embargo_bot.store.stage_queries import StageQueries


@dataclass(frozen=True)
class StageSummary:
    """Counts of a stage's deliveries by state."""

    pending: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.failed + self.cancelled


class DeliveryQueries(StageQueries):
    def expand_stage(
        self,
        stage_id: int,
        recipients: Sequence[NewDelivery],
        now: datetime,
        *,
        note: str | None = None,
    ) -> bool:
        """Fix a stage's recipients once; False (and no change) if they were fixed already.

        Fixing them once means a restart resumes the same set rather than
        re-reading lists that an admin may have edited since.
        """
        with self._write():
            fixed = self._db.execute(
                "UPDATE stages SET expanded = 1, detail = COALESCE(?, detail) "
                "WHERE id = ? AND expanded = 0",
                (note, stage_id),
            ).rowcount
            if not fixed:
                return False
            pack_id, kind = self._db.execute(
                "SELECT pack_id, kind FROM stages WHERE id = ?", (stage_id,)
            ).fetchone()
            stamp = to_storage(now)
            self._db.executemany(
                f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?, NULL, NULL, NULL, ?)",
                [
                    (
                        stage_id,
                        pack_id,
                        kind,
                        item.email,
                        item.name,
                        item.list_key,
                        item.message_id,
                        DeliveryState.PENDING.value,
                        stamp,
                        stamp,
                        item.certificate,
                    )
                    for item in recipients
                ],
            )
        return True

    def is_expanded(self, stage_id: int) -> bool:
        row = self._db.execute("SELECT expanded FROM stages WHERE id = ?", (stage_id,)).fetchone()
        return bool(row and row[0])

    def deliveries(
        self,
        pack_id: str,
        *,
        stage_id: int | None = None,
        state: DeliveryState | None = None,
    ) -> list[Delivery]:
        query = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE pack_id = ?"
        params: list[str | int] = [pack_id]
        if stage_id is not None:
            query += " AND stage_id = ?"
            params.append(stage_id)
        if state is not None:
            query += " AND state = ?"
            params.append(state.value)
        query += " ORDER BY stage_id, rowid"
        return [rows.delivery(row) for row in self._db.execute(query, params)]

    def stage_summary(self, stage_id: int) -> StageSummary:
        counts = self._db.execute(
            "SELECT state, COUNT(*) FROM deliveries WHERE stage_id = ? GROUP BY state",
            (stage_id,),
        )
        return StageSummary(**{DeliveryState(state).value: count for state, count in counts})

    def notice_addresses(self, pack_id: str, *, other_than: int) -> set[str]:
        """Addresses already given a notice wave of this pack (any outcome), casefolded."""
        found = self._db.execute(
            "SELECT email FROM deliveries WHERE pack_id = ? AND kind = ? AND stage_id <> ?",
            (pack_id, StageKind.NOTICE.value, other_than),
        )
        return {row[0].casefold() for row in found}

    def holders(self, pack_id: str) -> list[Holder]:
        """Everyone who may hold the embargoed material, with the latest version and lift."""
        kinds = tuple(kind.value for kind in HOLDING_KINDS)
        # Version and lift 0 for one who may hold it: every follow-up goes to them.
        found = self._db.execute(
            "SELECT email, MIN(name), MIN(list_key), COALESCE(MAX(version), 0), "
            "COALESCE(MAX(lift_seq), 0) "
            f"FROM deliveries d WHERE d.pack_id = ? AND {MAY_HOLD} "
            f"AND d.kind IN ({', '.join('?' for _ in kinds)}) "
            "GROUP BY email ORDER BY MIN(rowid)",
            (pack_id, *kinds),
        )
        return [
            Holder(email=email, name=name, list_key=list_key, version=version, lift_seq=lift_seq)
            for email, name, list_key, version, lift_seq in found
        ]

    def record_attempt(
        self,
        stage_id: int,
        email: str,
        outcome: Outcome,
        now: datetime,
        *,
        state: DeliveryState,
        retry_at: datetime | None = None,
        version: int | None = None,
        lift_seq: int | None = None,
    ) -> bool:
        """Record one attempt and where the delivery now stands, in one commit.

        ``state`` is PENDING (with ``retry_at``) after a temporary failure, else final.
        False, and no change, if the delivery was no longer pending.
        """
        stamp = to_storage(now)
        with self._write():
            recorded = self._db.execute(
                "UPDATE deliveries SET state = ?, reply = ?, attempts = attempts + 1, "
                "updated_at = ?, next_attempt_at = ?, "
                "version = COALESCE(?, version), lift_seq = COALESCE(?, lift_seq) "
                "WHERE stage_id = ? AND email = ? AND state = ?",
                (
                    state.value,
                    outcome.reply,
                    stamp,
                    rows.optional_storage(retry_at),
                    version if state is DeliveryState.SENT else None,
                    lift_seq if state is DeliveryState.SENT else None,
                    stage_id,
                    email,
                    DeliveryState.PENDING.value,
                ),
            ).rowcount
            if recorded:
                self._db.execute(
                    f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) SELECT stage_id, email, attempts, "
                    "?, ?, ?, ? FROM deliveries WHERE stage_id = ? AND email = ?",
                    (stamp, outcome.kind.value, outcome.code, outcome.text, stage_id, email),
                )
        return recorded == 1

    def attempts(self, pack_id: str) -> list[Attempt]:
        found = self._db.execute(
            f"SELECT {', '.join('a.' + c.strip() for c in ATTEMPT_COLUMNS.split(','))} "
            "FROM attempts a JOIN stages s ON s.id = a.stage_id WHERE s.pack_id = ? "
            "ORDER BY a.stage_id, a.email, a.number",
            (pack_id,),
        )
        return [rows.attempt(row) for row in found]

    def cancel_pending(self, stage_id: int, now: datetime, reason: str) -> int:
        with self._write():
            return self._db.execute(
                "UPDATE deliveries SET state = ?, reply = ?, updated_at = ? "
                "WHERE stage_id = ? AND state = ?",
                (
                    DeliveryState.CANCELLED.value,
                    reason,
                    to_storage(now),
                    stage_id,
                    DeliveryState.PENDING.value,
                ),
            ).rowcount
