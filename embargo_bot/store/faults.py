"""Faults of the store itself, not of a query: a full disk, a file replaced or overwritten.

Each becomes one line saying what to do, once per minute in the service and
once in a command, never a traceback a poll: nothing recorded is lost by
them, and the service resumes when the fault is put right.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from embargo_bot.domain.errors import StoreError

SQLITE_HEADER = b"SQLite format 3\x00"
LITTLE_ROOM = 64 * 1024  # less free space than this, and an I/O error means "full"

# What the store raises when its file or its server, not a query, is the problem.
STORE_FAULTS: tuple[type[Exception], ...] = (sqlite3.DatabaseError, DBAPIError)


def _words(exc: Exception) -> str:
    """The driver's own words: SQLAlchemy's wrapper adds the statement and a link."""
    cause = getattr(exc, "orig", None) or exc
    return " ".join(str(cause).split()) or type(cause).__name__


def is_connection_lost(exc: Exception) -> bool:
    """The database server went away (restarted, unreachable): wait for it, it is no bug.

    SQLite's operational errors (a lock, a full disk) are about the file, not a server.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = getattr(exc, "orig", None)
    return isinstance(exc, OperationalError | InterfaceError) and not isinstance(
        cause, sqlite3.Error
    )


def is_locked(exc: Exception) -> bool:
    """SQLite's write lock was held by another connection (SQLITE_BUSY, or LOCKED)."""
    cause = getattr(exc, "orig", exc)
    code = getattr(cause, "sqlite_errorcode", None)
    if not isinstance(cause, sqlite3.OperationalError) or code is None:
        return False
    # The primary code: SQLITE_BUSY_SNAPSHOT and the like are kinds of busy too.
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def is_disk_full(exc: Exception, path: Path | None = None) -> bool:
    """SQLITE_FULL; or an I/O error (making the log file failed) on a disk with no room."""
    text = _words(exc)
    if "disk is full" in text or "No space left on device" in text:
        return True
    if "disk I/O error" not in text or path is None:
        return False
    try:
        room = os.statvfs(path.parent)
    except OSError:
        return False
    return room.f_bavail * room.f_frsize < LITTLE_ROOM


def describe_fault(exc: Exception, path: Path | None) -> StoreError:
    """One line for a fault of the store's file, disk or server, saying what to do."""
    text = _words(exc)
    where = "the database" if path is None else str(path)
    if is_disk_full(exc, path):
        return StoreError(
            f"the disk holding the store is full ({where}): free some space; nothing "
            "recorded is lost, and the service resumes when there is room"
        )
    if "not a database" in text or "malformed" in text:
        return StoreError(
            f"the store {where} is not a database any more ({text}): it was overwritten or "
            "damaged; restore it from a backup, or set EMBARGO_BOT_DATABASE to the right file"
        )
    return StoreError(f"the store {where} cannot be used: {text}")


def file_identity(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def file_problem(path: Path, identity: tuple[int, int]) -> str | None:
    """Why the file at ``path`` is no longer the store opened as ``identity``, if it is not.

    A store deleted, moved away or replaced while open stays readable and
    writable through our connection: we would go on sending and record it in a
    file nobody else sees. Cheap enough for every poll (one stat, 16 bytes).
    """
    try:
        now = file_identity(path)
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return f"the store {path} was removed while in use"
    except OSError as exc:
        return f"the store {path} cannot be read: {exc.strerror}"
    if now != identity:
        return f"the store {path} was replaced by another file while in use"
    if header != SQLITE_HEADER:
        return f"the store {path} is not a database any more (it was overwritten)"
    return None
