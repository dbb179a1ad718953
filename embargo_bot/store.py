"""The store: the one module that speaks SQL, and the source of truth.

SQLite in WAL mode, so the command line and the service can use one file at
once. Work is claimed with conditional ``UPDATE ... WHERE state = ?`` and a
check of the row count, never with in-process locks, so that several service
instances on PostgreSQL can later share the same tables unchanged.

Durability: ``synchronous=NORMAL`` in WAL survives the process being killed at
any point; after a power cut the last few commits may roll back, which can only
mean a message is sent again, never that one is lost.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from embargo_bot.classification import Classification
from embargo_bot.errors import StoreError
from embargo_bot.packs import (
    Delivery,
    DeliveryState,
    NewDelivery,
    Pack,
    PackState,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.times import from_storage, to_storage

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS packs (
    id             TEXT PRIMARY KEY,
    title          TEXT NOT NULL,
    reference      TEXT,
    url            TEXT NOT NULL,
    classification TEXT NOT NULL,
    contact        TEXT NOT NULL,
    lift_at        TEXT NOT NULL,
    list_keys      TEXT NOT NULL,
    pdf_name       TEXT NOT NULL,
    state          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    pdf_sealed     BLOB NOT NULL,
    release_sealed BLOB NOT NULL,
    social_sealed  BLOB
);
CREATE TABLE IF NOT EXISTS stages (
    pack_id     TEXT NOT NULL REFERENCES packs(id),
    kind        TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    detail      TEXT,
    owner       TEXT,
    lease_until TEXT,
    expanded    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pack_id, kind)
);
CREATE INDEX IF NOT EXISTS stages_by_state ON stages(state, due_at);
CREATE TABLE IF NOT EXISTS deliveries (
    pack_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    email      TEXT NOT NULL,
    name       TEXT,
    list_key   TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL,
    reply      TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pack_id, kind, email),
    FOREIGN KEY (pack_id, kind) REFERENCES stages(pack_id, kind)
);
"""

_PACK_COLUMNS = (
    "id, title, reference, url, classification, contact, lift_at, list_keys, pdf_name, "
    "state, created_at, created_by"
)
_STAGE_COLUMNS = "pack_id, kind, due_at, state, started_at, finished_at, detail, owner, lease_until"
_DELIVERY_COLUMNS = (
    "pack_id, kind, email, name, list_key, message_id, state, reply, attempts, "
    "created_at, updated_at"
)


@dataclass(frozen=True)
class SealedContent:
    """The embargoed material as the store holds it: encrypted by the vault."""

    pdf: bytes
    release: bytes
    social: bytes | None


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


class Store:
    """All reads and writes of packs, stages and deliveries."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        try:
            _create_private(path)
            connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            connection.execute("PRAGMA busy_timeout = 10000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.executescript(_SCHEMA)
            store = cls(connection, path)
            store._check_schema_version()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the store {path}: {exc}; check EMBARGO_BOT_DATABASE"
            ) from exc
        return store

    def close(self) -> None:
        self._db.close()

    def _check_schema_version(self) -> None:
        with self._write():
            row = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(
                    f"the store {self.path} is schema version {row[0]}, this embargo-bot "
                    f"reads version {SCHEMA_VERSION}; use the matching release"
                )

    @contextmanager
    def _write(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write
        # transaction cannot fail half-way with SQLITE_BUSY.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" poll."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # -- the key check ------------------------------------------------------

    def key_check(self) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
        return None if row is None else bytes(row[0])

    def set_key_check(self, token: bytes) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO meta (name, value) VALUES ('key_check', ?) "
                "ON CONFLICT(name) DO NOTHING",
                (token,),
            )

    # -- packs ----------------------------------------------------------------

    def add_pack(
        self,
        pack: Pack,
        content: SealedContent,
        stages: Sequence[tuple[StageKind, datetime]],
    ) -> bool:
        """Store a new pack and its stages in one transaction; False if the id is taken."""
        with self._write():
            taken = self._db.execute("SELECT 1 FROM packs WHERE id = ?", (pack.id,)).fetchone()
            if taken:
                return False
            self._db.execute(
                f"INSERT INTO packs ({_PACK_COLUMNS}, pdf_sealed, release_sealed, social_sealed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pack.id,
                    pack.title,
                    pack.reference,
                    pack.url,
                    pack.classification.value,
                    pack.contact,
                    to_storage(pack.lift_at),
                    ",".join(pack.list_keys),
                    pack.pdf_name,
                    pack.state.value,
                    to_storage(pack.created_at),
                    pack.created_by,
                    content.pdf,
                    content.release,
                    content.social,
                ),
            )
            self._db.executemany(
                "INSERT INTO stages (pack_id, kind, due_at, state) VALUES (?, ?, ?, ?)",
                [
                    (pack.id, kind.value, to_storage(due), StageState.SCHEDULED.value)
                    for kind, due in stages
                ],
            )
        return True

    def get_pack(self, pack_id: str) -> Pack:
        row = self._db.execute(
            f"SELECT {_PACK_COLUMNS} FROM packs WHERE id = ?", (pack_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no pack {pack_id!r}; `embargo-bot list` shows the packs")
        return _pack(row)

    def packs(self) -> list[Pack]:
        rows = self._db.execute(f"SELECT {_PACK_COLUMNS} FROM packs ORDER BY lift_at, id")
        return [_pack(row) for row in rows]

    def sealed_content(self, pack_id: str) -> SealedContent:
        row = self._db.execute(
            "SELECT pdf_sealed, release_sealed, social_sealed FROM packs WHERE id = ?", (pack_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no pack {pack_id!r}")
        return SealedContent(
            bytes(row[0]), bytes(row[1]), None if row[2] is None else bytes(row[2])
        )

    def any_sealed_content(self) -> SealedContent | None:
        row = self._db.execute(
            "SELECT pdf_sealed, release_sealed, social_sealed FROM packs LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return SealedContent(
            bytes(row[0]), bytes(row[1]), None if row[2] is None else bytes(row[2])
        )

    def cancel_pack(self, pack_id: str, now: datetime) -> bool:
        """Cancel an active pack and its scheduled stages; False if it was not active.

        A stage already sending sees the pack's state and stops before its next message.
        """
        with self._write():
            changed = self._db.execute(
                "UPDATE packs SET state = ? WHERE id = ? AND state = ?",
                (PackState.CANCELLED.value, pack_id, PackState.ACTIVE.value),
            ).rowcount
            if not changed:
                return False
            self._db.execute(
                "UPDATE stages SET state = ?, finished_at = ?, detail = ? "
                "WHERE pack_id = ? AND state = ?",
                (
                    StageState.CANCELLED.value,
                    to_storage(now),
                    "pack cancelled",
                    pack_id,
                    StageState.SCHEDULED.value,
                ),
            )
        return True

    def pack_state(self, pack_id: str) -> PackState:
        row = self._db.execute("SELECT state FROM packs WHERE id = ?", (pack_id,)).fetchone()
        if row is None:
            raise StoreError(f"no pack {pack_id!r}")
        return PackState(row[0])

    # -- stages ---------------------------------------------------------------

    def stages(self, pack_id: str) -> list[Stage]:
        rows = self._db.execute(
            f"SELECT {_STAGE_COLUMNS} FROM stages WHERE pack_id = ? ORDER BY due_at, kind",
            (pack_id,),
        )
        return [_stage(row) for row in rows]

    def stage(self, pack_id: str, kind: StageKind) -> Stage:
        row = self._db.execute(
            f"SELECT {_STAGE_COLUMNS} FROM stages WHERE pack_id = ? AND kind = ?",
            (pack_id, kind.value),
        ).fetchone()
        if row is None:
            raise StoreError(f"pack {pack_id!r} has no {kind} stage")
        return _stage(row)

    def open_stages(self) -> list[Stage]:
        """Every stage still to send or being sent, soonest first."""
        rows = self._db.execute(
            f"SELECT {_STAGE_COLUMNS} FROM stages WHERE state IN (?, ?) ORDER BY due_at",
            (StageState.SCHEDULED.value, StageState.SENDING.value),
        )
        return [_stage(row) for row in rows]

    def claim_stage(
        self, pack_id: str, kind: StageKind, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Take a due, scheduled stage for sending; False if it is not due or someone has it."""
        with self._write():
            claimed = self._db.execute(
                "UPDATE stages SET state = ?, owner = ?, lease_until = ?, "
                "started_at = COALESCE(started_at, ?) "
                "WHERE pack_id = ? AND kind = ? AND state = ? AND due_at <= ? "
                "AND EXISTS (SELECT 1 FROM packs WHERE id = ? AND state = ?)",
                (
                    StageState.SENDING.value,
                    owner,
                    to_storage(lease_until),
                    to_storage(now),
                    pack_id,
                    kind.value,
                    StageState.SCHEDULED.value,
                    to_storage(now),
                    pack_id,
                    PackState.ACTIVE.value,
                ),
            ).rowcount
        return claimed == 1

    def renew_lease(self, pack_id: str, kind: StageKind, owner: str, lease_until: datetime) -> bool:
        with self._write():
            renewed = self._db.execute(
                "UPDATE stages SET lease_until = ? "
                "WHERE pack_id = ? AND kind = ? AND owner = ? AND state = ?",
                (
                    to_storage(lease_until),
                    pack_id,
                    kind.value,
                    owner,
                    StageState.SENDING.value,
                ),
            ).rowcount
        return renewed == 1

    def release_stage(self, pack_id: str, kind: StageKind, owner: str) -> bool:
        """Hand a stage back unfinished (a clean stop), so the next start resumes it."""
        with self._write():
            released = self._db.execute(
                "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL "
                "WHERE pack_id = ? AND kind = ? AND owner = ? AND state = ?",
                (
                    StageState.SCHEDULED.value,
                    pack_id,
                    kind.value,
                    owner,
                    StageState.SENDING.value,
                ),
            ).rowcount
        return released == 1

    def reclaim_abandoned(self, now: datetime, dead_owners: Sequence[str] = ()) -> int:
        """Put back stages whose sender died: its lease ran out, or it is known dead."""
        with self._write():
            reclaimed = self._db.execute(
                "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL "
                "WHERE state = ? AND lease_until < ?",
                (StageState.SCHEDULED.value, StageState.SENDING.value, to_storage(now)),
            ).rowcount
            for owner in dead_owners:
                reclaimed += self._db.execute(
                    "UPDATE stages SET state = ?, owner = NULL, lease_until = NULL "
                    "WHERE state = ? AND owner = ?",
                    (StageState.SCHEDULED.value, StageState.SENDING.value, owner),
                ).rowcount
        return reclaimed

    def stage_owners(self) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT owner FROM stages WHERE state = ? AND owner IS NOT NULL",
            (StageState.SENDING.value,),
        )
        return [row[0] for row in rows]

    def finish_stage(
        self,
        pack_id: str,
        kind: StageKind,
        now: datetime,
        state: StageState,
        detail: str | None,
        *,
        owner: str | None = None,
    ) -> bool:
        """Close a stage: as its owner when sending, or straight from scheduled (a skip)."""
        expected = StageState.SCHEDULED if owner is None else StageState.SENDING
        with self._write():
            finished = self._db.execute(
                "UPDATE stages SET state = ?, finished_at = ?, detail = ?, lease_until = NULL "
                "WHERE pack_id = ? AND kind = ? AND state = ? AND owner IS ?",
                (
                    state.value,
                    to_storage(now),
                    detail,
                    pack_id,
                    kind.value,
                    expected.value,
                    owner,
                ),
            ).rowcount
            self._db.execute(
                "UPDATE packs SET state = ? WHERE id = ? AND state = ? AND NOT EXISTS "
                "(SELECT 1 FROM stages WHERE pack_id = ? AND state IN (?, ?))",
                (
                    PackState.DONE.value,
                    pack_id,
                    PackState.ACTIVE.value,
                    pack_id,
                    StageState.SCHEDULED.value,
                    StageState.SENDING.value,
                ),
            )
        return finished == 1

    # -- deliveries -------------------------------------------------------------

    def expand_stage(
        self, pack_id: str, kind: StageKind, recipients: Sequence[NewDelivery], now: datetime
    ) -> bool:
        """Fix a stage's recipients once; False (and no change) if they were fixed already.

        Fixing them once means a restart resumes the same set rather than
        re-reading lists that an admin may have edited since.
        """
        with self._write():
            fixed = self._db.execute(
                "UPDATE stages SET expanded = 1 WHERE pack_id = ? AND kind = ? AND expanded = 0",
                (pack_id, kind.value),
            ).rowcount
            if not fixed:
                return False
            stamp = to_storage(now)
            self._db.executemany(
                f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?)",
                [
                    (
                        pack_id,
                        kind.value,
                        item.email,
                        item.name,
                        item.list_key,
                        item.message_id,
                        DeliveryState.PENDING.value,
                        stamp,
                        stamp,
                    )
                    for item in recipients
                ],
            )
        return True

    def deliveries(
        self, pack_id: str, kind: StageKind | None = None, state: DeliveryState | None = None
    ) -> list[Delivery]:
        query = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE pack_id = ?"
        params: list[str] = [pack_id]
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind.value)
        if state is not None:
            query += " AND state = ?"
            params.append(state.value)
        query += " ORDER BY kind, rowid"
        return [_delivery(row) for row in self._db.execute(query, params)]

    def stage_summary(self, pack_id: str, kind: StageKind) -> StageSummary:
        rows = self._db.execute(
            "SELECT state, COUNT(*) FROM deliveries WHERE pack_id = ? AND kind = ? GROUP BY state",
            (pack_id, kind.value),
        )
        counts = {DeliveryState(state).value: count for state, count in rows}
        return StageSummary(**counts)

    def record_delivery(
        self,
        pack_id: str,
        kind: StageKind,
        email: str,
        state: DeliveryState,
        reply: str,
        now: datetime,
    ) -> bool:
        """Record a pending delivery's outcome; False if it was no longer pending."""
        with self._write():
            recorded = self._db.execute(
                "UPDATE deliveries SET state = ?, reply = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE pack_id = ? AND kind = ? AND email = ? AND state = ?",
                (
                    state.value,
                    reply,
                    to_storage(now),
                    pack_id,
                    kind.value,
                    email,
                    DeliveryState.PENDING.value,
                ),
            ).rowcount
        return recorded == 1

    def cancel_pending(self, pack_id: str, kind: StageKind, now: datetime) -> int:
        with self._write():
            return self._db.execute(
                "UPDATE deliveries SET state = ?, reply = ?, updated_at = ? "
                "WHERE pack_id = ? AND kind = ? AND state = ?",
                (
                    DeliveryState.CANCELLED.value,
                    "not sent: the pack was cancelled",
                    to_storage(now),
                    pack_id,
                    kind.value,
                    DeliveryState.PENDING.value,
                ),
            ).rowcount


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite opens it."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else from_storage(text)


def _pack(row: tuple[Any, ...]) -> Pack:
    (pack_id, title, reference, url, marking, contact, lift_at, list_keys, pdf_name, state,
     created_at, created_by) = row  # fmt: skip
    return Pack(
        id=pack_id,
        title=title,
        reference=reference,
        url=url,
        classification=Classification(marking),
        contact=contact,
        lift_at=from_storage(lift_at),
        list_keys=tuple(list_keys.split(",")),
        pdf_name=pdf_name,
        state=PackState(state),
        created_at=from_storage(created_at),
        created_by=created_by,
    )


def _stage(row: tuple[Any, ...]) -> Stage:
    pack_id, kind, due_at, state, started_at, finished_at, detail, owner, lease_until = row
    return Stage(
        pack_id=pack_id,
        kind=StageKind(kind),
        due_at=from_storage(due_at),
        state=StageState(state),
        started_at=_optional_time(started_at),
        finished_at=_optional_time(finished_at),
        detail=detail,
        owner=owner,
        lease_until=_optional_time(lease_until),
    )


def _delivery(row: tuple[Any, ...]) -> Delivery:
    (pack_id, kind, email, name, list_key, message_id, state, reply, attempts, created_at,
     updated_at) = row  # fmt: skip
    return Delivery(
        pack_id=pack_id,
        kind=StageKind(kind),
        email=email,
        name=name,
        list_key=list_key,
        message_id=message_id,
        state=DeliveryState(state),
        reply=reply,
        attempts=attempts,
        created_at=from_storage(created_at),
        updated_at=from_storage(updated_at),
    )
