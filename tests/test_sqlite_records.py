"""On SQLite each outcome is committed on the event loop when nobody else writes, and on
the store's thread when another connection holds the write lock: never a stalled loop."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from conftest import PacedHandler, loop_lateness_while_held, queue, write_big_list

from embargo_bot.app import open_app
from embargo_bot.devtools.standin_relay import StandInRelay
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.settings import Settings


async def test_another_writer_holding_the_store_does_not_stall_the_smtp_sessions(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    lists_dir: Path,
) -> None:
    crowd = write_big_list(lists_dir, "crowd", 40)
    held_for = 1.5
    with StandInRelay(PacedHandler(0.01)) as relay:
        settings = make_settings(relay, smtp_connections=2)
        with open_app(settings) as app:
            pack = queue(app, make_request(lists="crowd"))
            stage_id = app.store.stage_of(pack.id, StageKind.NOTICE).id

            @contextmanager
            def another_writer() -> Iterator[None]:
                # As a command writing (a queue, an approval) or a second instance would.
                with closing(sqlite3.connect(settings.database, isolation_level=None)) as other:
                    other.execute("BEGIN IMMEDIATE")
                    yield
                    other.execute("COMMIT")

            during = await loop_lateness_while_held(
                app, relay, stage_id, another_writer, held_for=held_for
            )
            states = Counter(d.state for d in app.store.deliveries(pack.id, stage_id=stage_id))
    worst = max(during, default=held_for)
    print(
        f"\nthe store's write lock held {held_for}s mid-stage: the event loop late by at most "
        f"{worst * 1000:.0f} ms meanwhile"
    )
    assert len(during) > 20
    assert worst < 0.2, "the loop waited for the write lock"
    assert Counter(item.rcpt_tos[0] for item in relay.received).keys() == set(crowd)
    assert states == Counter({DeliveryState.SENT: 40})
