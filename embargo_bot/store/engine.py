"""Opening a SQLAlchemy engine on the store, with each dialect's settings.

SQLite: pysqlite's own transaction handling is turned off, so that the
``begin`` event can say ``BEGIN IMMEDIATE`` for a write, which takes the
write lock up front: a read-then-write transaction cannot then fail half-way
with SQLITE_BUSY. WAL lets the command line read while the service writes.

PostgreSQL: psycopg 3 through a small pool that checks a connection before
handing it out, so a restarted server costs one failed call, not a stall.
"""

from __future__ import annotations

import fcntl
import grp
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

from embargo_bot.store.target import StoreTarget

# The execution option that marks a connection's transaction as a write.
WRITE = "embargo_bot_write"
BUSY_TIMEOUT_MS = 10_000
_PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    # In WAL, NORMAL survives the process being killed at any point; after a
    # power cut the last commits may roll back, so a message may go twice, never be lost.
    "PRAGMA synchronous = NORMAL",
    # After a checkpoint the log file is cut back to 1 MiB rather than kept at its
    # largest: SQLite alone checkpoints only at about 4 MB, enough to fill a small disk.
    "PRAGMA journal_size_limit = 1048576",
    "PRAGMA foreign_keys = ON",
)
# After _PRAGMAS, for a connection on the event loop: it must never wait for a lock.
# Its commits still fold the log into the file every 1,000 pages, as SQLite's do
# (a disk sync, a few milliseconds): it makes most commits, and left to the others
# the log would grow until it filled a small disk.
_NO_WAITING = ("PRAGMA busy_timeout = 0",)


def make_engine(target: StoreTarget, *, waits: bool = True) -> Engine:
    """``waits=False`` (SQLite): a write finding the lock taken fails at once;
    see ``StoreCore.without_waiting``."""
    if target.path is not None:
        return _sqlite_engine(target, waits=waits)
    return create_engine(
        target.url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        connect_args={"connect_timeout": 10, "application_name": "embargo-bot"},
    )


def _sqlite_engine(target: StoreTarget, *, waits: bool) -> Engine:
    busy_ms = BUSY_TIMEOUT_MS if waits else 0
    pragmas = _PRAGMAS if waits else (*_PRAGMAS, *_NO_WAITING)
    engine = create_engine(target.url, connect_args={"timeout": busy_ms / 1000})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A read is one statement, atomic on its own: it needs no BEGIN at all.
        if connection.info.get(WRITE) or connection.get_execution_options().get(WRITE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sqlite_exists(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


@contextmanager
def creation_lock(path: Path, group: str | None) -> Iterator[None]:
    """Held while a SQLite store is opened for the first time in this process.

    Creating the file and switching it to WAL cannot wait on SQLite's busy
    timeout, so two commands creating one store at once could fail with
    "database is locked"; this lock file makes the second wait for the first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path)
    descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, private_mode(group))
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        create_private(path, group)
        yield
    finally:
        os.close(descriptor)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + "-lock")


def private_mode(group: str | None) -> int:
    return 0o660 if group else 0o600


def create_private(path: Path, group: str | None) -> None:
    """Create the database file for its owner (and group) only, before SQLite opens it.

    SQLite gives the -wal and -shm files it makes the database file's mode.
    """
    if path.exists():
        return
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, private_mode(group)))


def share_with_group(path: Path, group: str | None) -> None:
    if group is None:
        return
    gid = grp.getgrnam(group).gr_gid
    for part in (path, lock_path(path), *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        if part.exists():
            os.chown(part, -1, gid)
            part.chmod(0o660)
