"""What recording one outcome costs on PostgreSQL: the round trips to the server.

Each connection of a stage records a message's outcome before it sends the
next, and each round trip takes the interpreter's lock from the SMTP sessions
on the event loop, so a lone outcome must be one statement, one round trip,
where BEGIN, the statement and COMMIT would make three. Counted in libpq's
own trace of what the client sent.
"""

from __future__ import annotations

import re
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

# A client message that waits for the server's answer: a simple query
# (BEGIN, COMMIT) or the Sync that ends an extended-protocol statement.
_ROUND_TRIP = re.compile(r"^F\t\d+\t(Query|Sync)\b", re.MULTILINE)


class Trace:
    """libpq's protocol trace of every connection opened meanwhile, in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w")

    def connected(self, dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.pgconn.trace(self._file.fileno())
        dbapi_connection.pgconn.set_trace_flags(3)  # no timestamps, stable output

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


async def test_one_recipients_outcome_is_one_round_trip(pg_url: str, traced: Trace) -> None:
    store = Store.open(pg_url)
    thread = StoreThread(lambda: Store.open(pg_url, create=False))
    try:
        pack = add(store)
        notice = stage_id(store, pack.id, StageKind.NOTICE)
        assert store.claim_stage(notice, "sender", T0, minutes(5))
        store.expand_stage(notice, recipients("a@police.example", "b@police.example"), T0)
        recorder = AttemptRecorder(
            store,
            lambda: T0,
            RetryPolicy(base=timedelta(seconds=1), window=timedelta(minutes=5)),
            store.stage(notice),
            "notice",
        )
        built = BuiltMessage(MessageCopies(StageMessage(pack.id, StageKind.NOTICE, b"", b"")), 1, 1)
        first, second = store.deliveries(pack.id, stage_id=notice)
        # The thread's own store connects now, and is warm, as in a stage under way.
        await recorder.record(
            Outgoing((first,), first.message_id, None), (ACCEPTED,), built, thread
        )
        before = traced.round_trips()
        await recorder.record(
            Outgoing((second,), second.message_id, None), (ACCEPTED,), built, thread
        )
        assert traced.round_trips() - before == 1
    finally:
        thread.close()
    assert {d.email: d.state for d in store.deliveries(pack.id, stage_id=notice)} == {
        "a@police.example": DeliveryState.SENT,
        "b@police.example": DeliveryState.SENT,
    }
    assert len(store.attempts(pack.id)) == 2
    store.close()
