"""The engine every part of the store shares, and its transactions."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import Connection, Engine, Executable, Row, Table, select, text, type_coerce
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import NullType

from embargo_bot.domain.errors import StoreError, StoreMissingError
from embargo_bot.store import migrate
from embargo_bot.store.engine import (
    WRITE,
    creation_lock,
    make_engine,
    share_with_group,
    sqlite_exists,
)
from embargo_bot.store.faults import describe_fault, file_identity, file_problem, is_disk_full
from embargo_bot.store.prepared import PreparedStatement
from embargo_bot.store.tables import insertion_order, meta
from embargo_bot.store.target import StoreTarget, choose_store, mask

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

# A row of any width: the queries' own column lists say what is in it.
AnyRow = Row[*tuple[Any, ...]]
T = TypeVar("T")
# Seconds a held PostgreSQL connection may sit unused before it is checked.
IDLE_CHECK = 1.0
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class StoreCore:
    """One store, SQLite or PostgreSQL, with explicit write transactions.

    Like the connection it holds, a Store is for one thread: give each thread its own.
    """

    def __init__(
        self, engine: Engine, target: StoreTarget, identity: tuple[int, int] | None = None
    ) -> None:
        self._engine = engine
        self.target = target
        self.path = target.path
        self.dialect = engine.dialect.name
        self._order = insertion_order(self.dialect)
        self._held: Connection | None = None
        self._used = 0.0
        self._reader: Connection | None = None
        self._active: Connection | None = None
        self._depth = 0
        # Which file this store is, to notice it removed or replaced under us.
        self._identity = identity
        self._compiled: dict[int, PreparedStatement] = {}

    @classmethod
    def open(
        cls,
        target: StoreTarget | Path | str,
        *,
        group: str | None = None,
        password: str | None = None,
        create: bool = True,
    ) -> Self:
        """Open the store, creating it at the newest revision if it is new and ``create``.

        Refuses (StoreError) a store older than this release: see ``migrate``.
        """
        if not isinstance(target, StoreTarget):
            target = choose_store(target, password=password)
        path = target.path
        if path is not None and not create and not sqlite_exists(path):
            raise StoreMissingError(_missing(path))
        engine = make_engine(target)
        try:
            if path is None:
                _prepare(engine, target, create=create)
            else:
                with creation_lock(path, group):
                    _prepare(engine, target, create=create)
                share_with_group(path, group)
        except SQLAlchemyError as exc:
            engine.dispose()
            if is_disk_full(exc, path):
                raise describe_fault(exc, path) from exc
            raise StoreError(
                f"cannot open the store {target.shown}: {reason(exc, target)}; "
                "check EMBARGO_BOT_DATABASE"
            ) from exc
        except BaseException:
            engine.dispose()
            raise
        if path is None:
            return cls(engine, target)
        try:
            identity = file_identity(path)
        except OSError as exc:
            engine.dispose()
            problem = file_problem(path, (-1, -1)) or f"the store {path} cannot be read"
            raise StoreError(f"{problem}; check EMBARGO_BOT_DATABASE") from exc
        return cls(engine, target, identity)

    def without_waiting(self) -> Self | None:
        """Another connection to this SQLite store, whose writes fail at once
        (``is_locked``) rather than wait while another connection writes: for a
        write that may run on the event loop only if it need not wait. None on
        PostgreSQL, where every write may wait on the network."""
        if self.path is None:
            return None
        return type(self)(make_engine(self.target, waits=False), self.target, self._identity)

    def file_problem(self) -> str | None:
        """Why the file at the store's path is no longer this open store (SQLite), if not."""
        if self.path is None or self._identity is None:
            return None
        return file_problem(self.path, self._identity)

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the store and empty it (after each stage).

        A busy reader only makes this a partial one. PostgreSQL keeps its own log.
        """
        if self.dialect == "sqlite":
            # Outside any transaction, as SQLite wants: the reads' connection.
            self._first(text("PRAGMA wal_checkpoint(TRUNCATE)"))

    def close(self) -> None:
        for held in (self._held, self._reader):
            if held is not None:
                held.close()
        self._held = self._reader = None
        self._engine.dispose()

    def _connection(self) -> Connection:
        # One connection for the store's life, as before SQLAlchemy: checking one
        # out of the pool for every query cost more than the query. A PostgreSQL
        # server may have restarted during a pause, so after one the connection
        # is checked before a write relies on it (a burst of writes is not).
        held = self._held
        if held is None or held.closed or held.invalidated:
            held = self._held = self._engine.connect()
        elif self.dialect == "postgresql" and time.monotonic() - self._used > IDLE_CHECK:
            held = self._held = _alive_or_new(held, self._engine)
        self._used = time.monotonic()
        return held

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        # Nested uses join the outer transaction, so an action and its audit
        # entry commit together.
        if self._active is not None:
            self._depth += 1
            try:
                yield self._active
            finally:
                self._depth -= 1
            return
        connection = self._connection()
        connection.info[WRITE] = True
        try:
            transaction = connection.begin()
        finally:
            connection.info[WRITE] = False
        with transaction:
            self._active, self._depth = connection, 1
            try:
                yield connection
            finally:
                self._active, self._depth = None, 0

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._active is not None:
            yield self._active
            return
        # A read is one statement: on SQLite it runs without BEGIN (see engine),
        # on PostgreSQL on a second connection in autocommit, one round trip
        # instead of three. Either way no reader holds an old snapshot.
        connection = self._connection() if self.dialect == "sqlite" else self._autocommit()
        with connection.begin():
            yield connection

    def _autocommit(self) -> Connection:
        reader = self._reader
        if reader is None or reader.closed or reader.invalidated:
            reader = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._reader = reader
        return reader

    def _rows(self, statement: Executable, params: Params = None) -> Sequence[AnyRow]:
        return self._at_once(lambda connection: connection.execute(statement, params).all())

    def _first(self, statement: Executable, params: Params = None) -> AnyRow | None:
        return self._at_once(lambda connection: connection.execute(statement, params).first())

    def _at_once(self, fetch: Callable[[Connection], T]) -> T:
        """One statement, in the transaction under way or else committed as it runs
        (SQLite: a read, PostgreSQL: anything), tried once more on a new
        connection if the server dropped the old one."""
        try:
            with self._read() as connection:
                return fetch(connection)
        except DBAPIError as exc:
            if not exc.connection_invalidated or self._active is not None:
                raise
        with self._read() as connection:
            return fetch(connection)

    def _prepared(self, statement: ClauseElement) -> PreparedStatement:
        """``statement`` compiled once for this store's dialect (see ``PreparedStatement``)."""
        found = self._compiled.get(id(statement))
        if found is None:
            found = self._compiled[id(statement)] = PreparedStatement(
                statement, self._engine.dialect
            )
        return found

    def _upsert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that can say what to do ON CONFLICT, in the store's dialect."""
        # Only the store's own dialect is imported: PostgreSQL's package alone takes
        # longer to import than a command on SQLite spends on its query.
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def transaction(self) -> AbstractContextManager[Connection]:
        """One commit for several changes: all of them, or none."""
        return self._write()

    def meta(self, name: str) -> bytes | None:
        # Read untyped: anyone editing the store by hand may have written text where bytes were.
        value = self._first(
            select(type_coerce(meta.c.value, NullType())).where(meta.c.name == name)
        )
        if value is None:
            return None
        raw = value[0]
        return raw.encode() if isinstance(raw, str) else bytes(raw)

    def set_meta(self, name: str, value: bytes, *, replace: bool = True) -> None:
        insert = self._upsert(meta).values(name=name, value=value)
        statement = (
            insert.on_conflict_do_update(index_elements=[meta.c.name], set_={"value": value})
            if replace
            else insert.on_conflict_do_nothing(index_elements=[meta.c.name])
        )
        with self._write() as connection:
            connection.execute(statement)

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" poll.

        SQLite counts other connections' commits itself. PostgreSQL has no such
        counter, but its current snapshot (the transactions in progress, and
        the next id to be given out) changes whenever any transaction that
        wrote has ended or begun, so it serves without a hot counter row that
        every writer would queue on. Our own writes move it too: a wasted poll.
        """
        if self.dialect == "sqlite":
            row = self._first(text("PRAGMA data_version"))
            return 0 if row is None else int(row[0])
        row = self._first(text("SELECT pg_current_snapshot()::text"))
        snapshot = "" if row is None else str(row[0])
        return int.from_bytes(hashlib.blake2b(snapshot.encode(), digest_size=8).digest(), "big")


def _alive_or_new(connection: Connection, engine: Engine) -> Connection:
    try:
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        connection.close()
        return engine.connect()
    return connection


def _prepare(engine: Engine, target: StoreTarget, *, create: bool) -> None:
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            migrate.lock(connection)
            migrate.prepare(connection, target.shown, create=create)


def reason(exc: SQLAlchemyError, target: StoreTarget) -> str:
    """The driver's own words, without SQLAlchemy's statement and link: one line, no password."""
    cause = getattr(exc, "orig", None) or exc
    words = mask(" ".join(str(cause).split()) or type(cause).__name__)
    password = target.url.password
    return words.replace(str(password), "***") if password else words


def upgrade(
    target: StoreTarget | Path | str, *, group: str | None = None, password: str | None = None
) -> tuple[str | None, str]:
    """``embargo-bot db upgrade``: bring the store to this release's revision.

    Returns the revision it was at (None for a store made before migrations)
    and the one it is at now. Running it again changes nothing.
    """
    if not isinstance(target, StoreTarget):
        target = choose_store(target, password=password)
    path = target.path
    if path is not None and not sqlite_exists(path):
        raise StoreError(f"there is no store at {path} to upgrade; check EMBARGO_BOT_DATABASE")
    engine = make_engine(target)
    try:
        with engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with creation_lock(path, group) if path else nullcontext(), connection.begin():
                migrate.lock(connection)
                return migrate.upgrade_in(connection, target.shown)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot upgrade the store {target.shown}: {reason(exc, target)}; "
            "check EMBARGO_BOT_DATABASE"
        ) from exc
    finally:
        engine.dispose()


def _missing(path: Path) -> str:
    # A relative setting is read from the folder the command runs in: say which.
    where = path if path.is_absolute() else f"{path} in {Path.cwd()}"
    return (
        f"no store at {where} (EMBARGO_BOT_DATABASE); run embargo-bot from the folder that "
        "holds your .env, or set EMBARGO_BOT_DATABASE to the store's path. Only "
        "`embargo-bot queue` and `embargo-bot run` create a new store"
    )
