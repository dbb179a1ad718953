"""What recording one outcome costs on PostgreSQL: the round trips to the server.

Each connection of a stage records a message's outcome before it sends the
next, and each round trip takes the interpreter's lock from the SMTP sessions
on the event loop, so a lone outcome must be one statement, one round trip,
where BEGIN, the statement and COMMIT would make three. Counted in libpq's
own trace of what the client sent. The service records them from the event
loop (the async driver); the store's thread is what it falls back on elsewhere.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from servers.postgres import PostgresServer
from sqlalchemy import event
from sqlalchemy.pool import Pool
from store.builders import ACCEPTED, T0, add, minutes, recipients, stage_id

from embargo_bot.delivery.outgoing import Outgoing
from embargo_bot.delivery.recording import AttemptRecorder
from embargo_bot.delivery.retry import RetryPolicy
from embargo_bot.delivery.store_thread import StoreThread
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.messages.builder import BuiltMessage
from embargo_bot.messages.mime import MessageCopies, StageMessage
from embargo_bot.store import Store
from embargo_bot.store.loop_outcomes import LoopOutcomes

# A client message that waits for the server's answer: a simple query
# (BEGIN, COMMIT) or the Sync that ends an extended-protocol statement.
_ROUND_TRIP = re.compile(r"^F\t\d+\t(Query|Sync)\b", re.MULTILINE)


class Trace:
    """libpq's protocol trace of every connection opened meanwhile, in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w")

    def connected(self, dbapi_connection: Any, _record: object) -> None:
        # The async engine's connections wrap psycopg's own.
        pgconn = getattr(dbapi_connection, "driver_connection", dbapi_connection).pgconn
        pgconn.trace(self._file.fileno())
        pgconn.set_trace_flags(3)  # no timestamps, stable output

    def round_trips(self) -> int:
        self._file.flush()
        return len(_ROUND_TRIP.findall(self.path.read_text()))

    def close(self) -> None:
        self._file.close()


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Trace]:
    trace = Trace(tmp_path / "libpq.trace")
    event.listen(Pool, "connect", trace.connected)
    try:
        yield trace
    finally:
        event.remove(Pool, "connect", trace.connected)
        trace.close()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.new_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


class Stage:
    """A PostgreSQL store with a notice stage to three partners, and its recorder."""

    def __init__(self, url: str, *, on_loop: bool) -> None:
        self.store = Store.open(url)
        self.thread = StoreThread(lambda: Store.open(url, create=False))
        self.on_loop = LoopOutcomes.open(self.store.target, connections=2) if on_loop else None
        self.pack = add(self.store)
        self.notice = stage_id(self.store, self.pack.id, StageKind.NOTICE)
        assert self.store.claim_stage(self.notice, "sender", T0, minutes(5))
        emails = ("a@police.example", "b@police.example", "c@police.example")
        self.store.expand_stage(self.notice, recipients(*emails), T0)
        self.recorder = AttemptRecorder(
            self.store,
            lambda: T0,
            RetryPolicy(base=timedelta(seconds=1), window=timedelta(minutes=5)),
            self.store.stage(self.notice),
            "notice",
            thread=self.thread,
            on_loop=self.on_loop,
        )
        self.deliveries = self.store.deliveries(self.pack.id, stage_id=self.notice)
        self.built = BuiltMessage(
            MessageCopies(StageMessage(self.pack.id, StageKind.NOTICE, b"", b"")), 1, 1
        )

    async def accepted(self, number: int) -> None:
        delivery = self.deliveries[number]
        message = Outgoing((delivery,), delivery.message_id, None)
        await self.recorder.record(message, (ACCEPTED,), self.built)

    def states(self) -> list[DeliveryState]:
        return [d.state for d in self.store.deliveries(self.pack.id, stage_id=self.notice)]

    async def close(self) -> None:
        if self.on_loop is not None:
            await self.on_loop.close()
        self.thread.close()
        self.store.close()


@pytest.mark.parametrize("on_loop", [True, False], ids=["from the loop", "on the store thread"])
async def test_one_recipients_outcome_is_one_round_trip(
    pg_url: str, traced: Trace, on_loop: bool
) -> None:
    stage = Stage(pg_url, on_loop=on_loop)
    try:
        # The recording connection opens now, and is warm, as in a stage under way.
        await stage.accepted(0)
        before = traced.round_trips()
        await stage.accepted(1)
        assert traced.round_trips() - before == 1
        assert stage.states() == [DeliveryState.SENT, DeliveryState.SENT, DeliveryState.PENDING]
        assert len(stage.store.attempts(stage.pack.id)) == 2
    finally:
        await stage.close()


async def test_outcomes_are_recorded_from_the_loop_not_behind_the_store_thread(
    pg_url: str,
) -> None:
    stage = Stage(pg_url, on_loop=True)
    try:
        # The thread is busy (a heartbeat, a claim's renewal held up by the server).
        busy = asyncio.ensure_future(stage.thread.call(lambda _store: time.sleep(1.5)))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await stage.accepted(0)
        took = time.monotonic() - started
        await busy
    finally:
        await stage.close()
    assert took < 0.5, f"the outcome waited {took:.2f} s for the store's thread"
