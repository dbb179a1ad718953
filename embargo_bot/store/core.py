"""The connection every part of the store shares, and its transactions."""

from __future__ import annotations

import grp
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Self

from embargo_bot.domain.errors import StoreError
from embargo_bot.store.schema import SCHEMA, SCHEMA_VERSION, TRIGGERS


class Connection:
    """One SQLite connection in WAL mode, with explicit write transactions."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._depth = 0
        self._identity = _identity(path)

    @classmethod
    def open(cls, path: Path, *, group: str | None = None) -> Self:
        try:
            _create_private(path, group)
            connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            connection.execute("PRAGMA busy_timeout = 10000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            # After a checkpoint, the log file is cut back to this size rather than kept.
            connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            connection.execute("PRAGMA foreign_keys = ON")
            opened = cls(connection, path)
            opened._prepare_schema()
            _share_with_group(path, group)
        except sqlite3.Error as exc:
            if is_disk_full(exc, path):
                raise describe_fault(exc, path) from exc
            raise StoreError(
                f"cannot open the store {path}: {exc}; check EMBARGO_BOT_DATABASE"
            ) from exc
        return opened

    def close(self) -> None:
        self._db.close()

    def file_problem(self) -> str | None:
        """Why the file at the store's path is no longer this open store, if it is not.

        A store deleted, moved away or replaced while open stays readable and
        writable through our connection: we would go on sending and record it
        in a file nobody else sees. Cheap enough for every poll (one stat, 16 bytes).
        """
        try:
            identity = _identity(self.path)
            with self.path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return f"the store {self.path} was removed while in use"
        except OSError as exc:
            return f"the store {self.path} cannot be read: {exc.strerror}"
        if identity != self._identity:
            return f"the store {self.path} was replaced by another file while in use"
        if header != SQLITE_HEADER:
            return f"the store {self.path} is not a database any more (it was overwritten)"
        return None

    def _prepare_schema(self) -> None:
        with self._write():
            has_meta = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            row = (
                self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
                if has_meta
                else None
            )
            if row is not None and int(row[0]) != SCHEMA_VERSION:
                raise StoreError(
                    f"the store {self.path} is schema version {int(row[0])}; this embargo-bot "
                    f"reads version {SCHEMA_VERSION}. Use the release that wrote it, or start "
                    "a new store with EMBARGO_BOT_DATABASE"
                )
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            for trigger in TRIGGERS:
                self._db.execute(trigger)
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )

    @contextmanager
    def _write(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write
        # transaction cannot fail half-way with SQLITE_BUSY. Nested uses join
        # the outer transaction, so an action and its audit entry commit together.
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            # A failed COMMIT (disk full) leaves the transaction open: end it, or
            # every later BEGIN fails too, even once there is room again.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the store and empty it (after each stage).

        SQLite alone checkpoints only at about 4 MB of log, which can fill a
        small disk mid-stage; a busy reader just makes this a partial one.
        """
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def transaction(self) -> AbstractContextManager[None]:
        """One commit for several changes: all of them, or none."""
        return self._write()

    def meta(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        # Anyone editing the file by hand may have written text where bytes were.
        return row[0].encode() if isinstance(row[0], str) else bytes(row[0])

    def set_meta(self, name: str, value: bytes, *, replace: bool = True) -> None:
        conflict = "DO UPDATE SET value = excluded.value" if replace else "DO NOTHING"
        with self._write():
            self._db.execute(
                f"INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) {conflict}",
                (name, value),
            )

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" poll."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])


SQLITE_HEADER = b"SQLite format 3\x00"
WAL_SIZE_LIMIT = 1 << 20
LITTLE_ROOM = 64 * 1024  # less free space than this, and an I/O error means "full"

# What the store raises when its file, not a query, is the problem.
STORE_FAULTS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)


def is_disk_full(exc: Exception, path: Path | None = None) -> bool:
    """SQLITE_FULL; or an I/O error (making the log file failed) on a disk with no room."""
    text = str(exc)
    if "disk is full" in text:
        return True
    if "disk I/O error" not in text or path is None:
        return False
    try:
        room = os.statvfs(path.parent)
    except OSError:
        return False
    return room.f_bavail * room.f_frsize < LITTLE_ROOM


def describe_fault(exc: Exception, path: Path) -> StoreError:
    """One line for a fault of the store's file or disk, saying what to do."""
    text = str(exc)
    if is_disk_full(exc, path):
        return StoreError(
            f"the disk holding the store is full ({path}): free some space; nothing "
            "recorded is lost, and the service resumes when there is room"
        )
    if "not a database" in text or "malformed" in text:
        return StoreError(
            f"the store {path} is not a database any more ({text}): it was overwritten or "
            "damaged; restore it from a backup, or set EMBARGO_BOT_DATABASE to the right file"
        )
    return StoreError(f"the store {path} cannot be used: {text}")


def _identity(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _create_private(path: Path, group: str | None) -> None:
    """Create the database file for its owner (and group) only, before SQLite opens it.

    SQLite gives the -wal and -shm files it makes the database file's mode.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o660 if group else 0o600))


def _share_with_group(path: Path, group: str | None) -> None:
    if group is None:
        return
    gid = grp.getgrnam(group).gr_gid
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists():
            os.chown(part, -1, gid)
            part.chmod(0o660)
