"""Packs and their versions: queue, clear, reschedule, amend and withdraw.

Each change is one transaction, conditional on the state the caller checked
(``expected_*``), so two officials acting at once cannot both succeed on a
stale view. A change partners must hear about adds its follow-up stage in the
same transaction, and only if someone may already hold the notice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.outcomes import AMBIGUOUS
from embargo_bot.domain.packs import (
    HOLDING_KINDS,
    NewStage,
    Pack,
    PackState,
    PackVersion,
    StageKind,
    StageState,
)
from embargo_bot.domain.times import to_storage
from embargo_bot.store import rows
from embargo_bot.store.audit_queries import AuditQueries
from embargo_bot.store.schema import PACK_COLUMNS, PACK_FROM, VERSION_COLUMNS

_HOLDING = tuple(kind.value for kind in HOLDING_KINDS)

# A delivery ``d`` whose partner may hold the embargoed material: sent; or still
# pending, but the relay may have taken it (an ambiguous attempt), or its stage
# was started and will not send it now (a crash between the relay's "250" and
# our commit leaves exactly this). Follow-ups go to all of them: a withdrawal
# that misses one holder is worse than one to a listed partner not yet sent it.
MAY_HOLD = f"""(d.state = 'sent' OR (d.state = 'pending' AND (
    EXISTS (SELECT 1 FROM attempts a WHERE a.stage_id = d.stage_id AND a.email = d.email
            AND a.reply LIKE '%{AMBIGUOUS}%')
    OR EXISTS (SELECT 1 FROM stages s JOIN packs p ON p.id = s.pack_id
               WHERE s.id = d.stage_id AND s.started_at IS NOT NULL
               AND (s.state NOT IN ('scheduled', 'sending') OR p.state <> 'active')))))"""


@dataclass(frozen=True)
class SealedContent:
    """The embargoed material as the store holds it: encrypted by the vault."""

    pdf: bytes
    release: bytes
    social: bytes | None


class PackQueries(AuditQueries):
    def add_pack(
        self,
        pack: Pack,
        version: PackVersion,
        content: SealedContent,
        stages: Sequence[NewStage],
    ) -> bool:
        """Store a new pack, its first version and its stages; False if the id is taken."""
        with self._write():
            if self._db.execute("SELECT 1 FROM packs WHERE id = ?", (pack.id,)).fetchone():
                return False
            self._db.execute(
                "INSERT INTO packs (id, reference, classification, contact, lift_at, lift_seq, "
                "list_keys, version, state, created_at, created_by, needs_clearance) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pack.id,
                    pack.reference,
                    pack.classification.value,
                    pack.contact,
                    to_storage(pack.lift_at),
                    pack.lift_seq,
                    ",".join(pack.list_keys),
                    pack.version,
                    pack.state.value,
                    to_storage(pack.created_at),
                    pack.created_by,
                    int(pack.needs_clearance),
                ),
            )
            self._insert_version(version, content)
            self._insert_stages(pack.id, stages)
        return True

    def _insert_version(self, version: PackVersion, content: SealedContent) -> None:
        self._db.execute(
            f"INSERT INTO pack_versions ({VERSION_COLUMNS}, pdf_sealed, release_sealed, "
            "social_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version.pack_id,
                version.version,
                version.title,
                version.url,
                version.pdf_name,
                ",".join(version.changed),
                version.note,
                version.changed_by,
                to_storage(version.changed_at),
                content.pdf,
                content.release,
                content.social,
            ),
        )

    def _insert_stages(self, pack_id: str, stages: Sequence[NewStage]) -> list[int]:
        ids = []
        for stage in stages:
            cursor = self._db.execute(
                "INSERT INTO stages (pack_id, kind, wave, list_keys, due_at, state, "
                "base_lift_seq, base_version, old_lift_at, test_address, test_of, report_of) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pack_id,
                    stage.kind.value,
                    stage.wave,
                    ",".join(stage.list_keys),
                    to_storage(stage.due_at),
                    (StageState.HELD if stage.held else StageState.SCHEDULED).value,
                    stage.base_lift_seq,
                    stage.base_version,
                    rows.optional_storage(stage.old_lift_at),
                    stage.test_address,
                    ",".join(kind.value for kind in stage.test_of),
                    stage.report_of,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    def get_pack(self, pack_id: str) -> Pack:
        row = self._db.execute(
            f"SELECT {PACK_COLUMNS} FROM {PACK_FROM} WHERE p.id = ?", (pack_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no pack {pack_id!r}; `embargo-bot list` shows the packs")
        return rows.pack(row)

    def packs(self) -> list[Pack]:
        query = f"SELECT {PACK_COLUMNS} FROM {PACK_FROM} ORDER BY p.lift_at, p.id"
        return [rows.pack(row) for row in self._db.execute(query)]

    def pack_state(self, pack_id: str) -> tuple[PackState, int, int]:
        """The pack's state, version and lift sequence: what a sending stage watches."""
        row = self._db.execute(
            "SELECT state, version, lift_seq FROM packs WHERE id = ?", (pack_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no pack {pack_id!r}")
        return PackState(row[0]), int(row[1]), int(row[2])

    def versions(self, pack_id: str) -> list[PackVersion]:
        query = f"SELECT {VERSION_COLUMNS} FROM pack_versions WHERE pack_id = ? ORDER BY version"
        return [rows.version(row) for row in self._db.execute(query, (pack_id,))]

    def sealed_content(self, pack_id: str, version: int) -> SealedContent:
        row = self._db.execute(
            "SELECT pdf_sealed, release_sealed, social_sealed FROM pack_versions "
            "WHERE pack_id = ? AND version = ?",
            (pack_id, version),
        ).fetchone()
        if row is None:
            raise StoreError(f"no version {version} of pack {pack_id!r}")
        return _sealed(row)

    def any_sealed_content(self) -> SealedContent | None:
        row = self._db.execute(
            "SELECT pdf_sealed, release_sealed, social_sealed FROM pack_versions LIMIT 1"
        ).fetchone()
        return None if row is None else _sealed(row)

    def purgeable_packs(self, before: datetime) -> list[str]:
        """Finished or withdrawn packs, public or withdrawn before ``before``, not yet purged."""
        rows_ = self._db.execute(
            "SELECT id FROM packs WHERE purged_at IS NULL AND state IN (?, ?) "
            "AND COALESCE(cancelled_at, lift_at) < ? ORDER BY id",
            (PackState.DONE.value, PackState.CANCELLED.value, to_storage(before)),
        )
        return [row[0] for row in rows_]

    def purge_pack(self, pack_id: str, now: datetime) -> bool:
        """Delete a pack's material (every version), keeping it and its delivery records."""
        with self._write():
            marked = self._db.execute(
                "UPDATE packs SET purged_at = ? WHERE id = ? AND purged_at IS NULL",
                (to_storage(now), pack_id),
            ).rowcount
            if marked:
                self._db.execute(
                    "UPDATE pack_versions SET pdf_sealed = X'', release_sealed = X'', "
                    "social_sealed = NULL WHERE pack_id = ?",
                    (pack_id,),
                )
        return marked == 1

    def sealed_versions(self) -> list[tuple[str, int, SealedContent]]:
        """Every stored version's material, for re-encryption under a new key."""
        rows_ = self._db.execute(
            "SELECT pack_id, version, pdf_sealed, release_sealed, social_sealed "
            "FROM pack_versions ORDER BY pack_id, version"
        )
        return [(row[0], int(row[1]), _sealed(row[2:])) for row in rows_]

    def reseal_version(self, pack_id: str, version: int, content: SealedContent) -> None:
        with self._write():
            self._db.execute(
                "UPDATE pack_versions SET pdf_sealed = ?, release_sealed = ?, social_sealed = ? "
                "WHERE pack_id = ? AND version = ?",
                (content.pdf, content.release, content.social, pack_id, version),
            )

    def approve(self, pack_id: str, by: str, now: datetime) -> bool:
        with self._write():
            changed = self._db.execute(
                "UPDATE packs SET cleared_at = ?, cleared_by = ? WHERE id = ? AND state = ? "
                "AND needs_clearance = 1 AND cleared_at IS NULL AND created_by <> ?",
                (to_storage(now), by, pack_id, PackState.ACTIVE.value, by),
            ).rowcount
        return changed == 1

    def reschedule(
        self,
        pack: Pack,
        *,
        lift_at: datetime,
        list_keys: Sequence[str],
        replace_waves: Sequence[int],
        new_waves: Sequence[NewStage],
        follow_up: NewStage,
        now: datetime,
    ) -> bool:
        """Move the lift (and perhaps the unsent waves); False if the pack changed meanwhile."""
        with self._write():
            if not self._still(pack):
                return False
            self._db.execute(
                "UPDATE packs SET lift_at = ?, lift_seq = lift_seq + 1, list_keys = ? WHERE id = ?",
                (to_storage(lift_at), ",".join(list_keys), pack.id),
            )
            self._db.execute(
                "UPDATE stages SET due_at = ? WHERE pack_id = ? AND kind = ?",
                (to_storage(lift_at), pack.id, StageKind.LIVE.value),
            )
            for stage_id in replace_waves:
                self._db.execute(
                    "UPDATE stages SET state = ?, finished_at = ?, detail = ? "
                    "WHERE id = ? AND state = ?",
                    (
                        StageState.CANCELLED.value,
                        to_storage(now),
                        "replaced when the embargo was rescheduled",
                        stage_id,
                        StageState.SCHEDULED.value,
                    ),
                )
            self._insert_stages(pack.id, new_waves)
            self._add_follow_up_if_notified(pack.id, follow_up)
        return True

    def amend(
        self,
        pack: Pack,
        version: PackVersion,
        content: SealedContent,
        follow_up: NewStage,
    ) -> bool:
        """Store a new version; False if the pack changed meanwhile."""
        with self._write():
            if not self._still(pack):
                return False
            self._insert_version(version, content)
            self._db.execute(
                "UPDATE packs SET version = ? WHERE id = ?", (version.version, pack.id)
            )
            self._add_follow_up_if_notified(pack.id, follow_up)
        return True

    def withdraw(
        self, pack: Pack, *, by: str, reason: str | None, now: datetime, follow_up: NewStage
    ) -> bool:
        """Cancel the pack and every stage not yet sent; tell holders, if any."""
        with self._write():
            if not self._still(pack):
                return False
            stamp = to_storage(now)
            self._db.execute(
                "UPDATE packs SET state = ?, cancelled_at = ?, cancelled_by = ?, "
                "cancel_reason = ? WHERE id = ?",
                (PackState.CANCELLED.value, stamp, by, reason, pack.id),
            )
            self._db.execute(
                "UPDATE stages SET state = ?, finished_at = ?, detail = ? "
                "WHERE pack_id = ? AND state = ?",
                (
                    StageState.CANCELLED.value,
                    stamp,
                    "pack withdrawn",
                    pack.id,
                    StageState.SCHEDULED.value,
                ),
            )
            self._add_follow_up_if_notified(pack.id, follow_up)
        return True

    def may_hold_notice(self, pack_id: str) -> bool:
        """Whether anyone may hold the embargoed material: sent, or being sent, it."""
        holding = ", ".join("?" for _ in _HOLDING)
        row = self._db.execute(
            f"SELECT EXISTS (SELECT 1 FROM deliveries d WHERE d.pack_id = ? AND {MAY_HOLD} "
            f"AND d.kind IN ({holding})) OR EXISTS (SELECT 1 FROM stages WHERE pack_id = ? "
            f"AND state = 'sending' AND kind IN ({holding}))",
            (pack_id, *_HOLDING, pack_id, *_HOLDING),
        ).fetchone()
        return bool(row[0])

    def _add_follow_up_if_notified(self, pack_id: str, follow_up: NewStage) -> None:
        if self.may_hold_notice(pack_id):
            self._insert_stages(pack_id, [follow_up])

    def _still(self, pack: Pack) -> bool:
        """The pack is active and unchanged since the caller read it, and not yet live."""
        row = self._db.execute(
            "SELECT 1 FROM packs p WHERE p.id = ? AND p.state = ? AND p.version = ? "
            "AND p.lift_seq = ? AND EXISTS (SELECT 1 FROM stages s WHERE s.pack_id = p.id "
            "AND s.kind = ? AND s.state = ?)",
            (
                pack.id,
                PackState.ACTIVE.value,
                pack.version,
                pack.lift_seq,
                StageKind.LIVE.value,
                StageState.SCHEDULED.value,
            ),
        ).fetchone()
        return row is not None


def _sealed(row: sqlite3.Row | tuple[bytes, bytes, bytes | None]) -> SealedContent:
    return SealedContent(bytes(row[0]), bytes(row[1]), None if row[2] is None else bytes(row[2]))
