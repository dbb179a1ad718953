"""PostgreSQL: each message's outcome recorded from the event loop, by psycopg's async driver.

Recorded on the store's thread, an outcome waited on a busy host for that
thread to be scheduled, then the server's process, then the thread again:
4 ms a message at the median, while the connection that sent it stood idle.
From the loop it waits for the server alone, and the loop goes on meanwhile,
so a slow or restarting server stalls no SMTP session. One statement (the
CTE) records a delivery and its attempt, in autocommit: one round trip. A
message to several recipients is one transaction, on the store's thread.
SQLAlchemy's async engine runs it, so its faults are the store's usual ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from embargo_bot.store.delivery_queries import RECORD_WITH_ATTEMPT
from embargo_bot.store.prepared import PreparedStatement
from embargo_bot.store.target import StoreTarget

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class LoopOutcomes:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._record = PreparedStatement(RECORD_WITH_ATTEMPT, engine.dialect)

    @classmethod
    def open(cls, target: StoreTarget, *, connections: int) -> LoopOutcomes | None:
        """For a PostgreSQL store (None for SQLite): a pooled connection for each SMTP
        connection of two stages at once, so that no outcome waits for another's
        round trip, and more when more stages send (closed again when returned)."""
        if target.path is not None:
            return None
        # Only a service on PostgreSQL loads the async engine and greenlet.
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(
            target.url,
            # Each record is one statement, atomic by itself: no BEGIN and COMMIT.
            isolation_level="AUTOCOMMIT",
            pool_size=2 * connections,
            # Never a wait for the pool: as many as the SMTP sessions recording at once.
            max_overflow=-1,
            connect_args={"connect_timeout": 10, "application_name": "embargo-bot"},
        )
        return cls(engine)

    async def record(self, params: Mapping[str, Any]) -> bool:
        """Record one recipient's outcome (``attempt_params``); False, and no change, if
        the delivery was no longer pending (as ``record_attempt``).

        Tried once more on a new connection if the server dropped the old one,
        which is safe: a record only changes a delivery still pending.
        """
        try:
            return await self._recorded(params)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return await self._recorded(params)

    async def _recorded(self, params: Mapping[str, Any]) -> bool:
        async with self._engine.connect() as connection:
            result = await connection.exec_driver_sql(
                self._record.sql, self._record.arguments(params)
            )
            return len(result.all()) == 1

    async def close(self) -> None:
        await self._engine.dispose()
