"""SQLite outcomes committed on the event loop, those of one turn of it together.

The relay's replies to a stage's connections come in while the loop is busy
with another message; the sessions they wake record them in the same turn of
the loop, and one commit for all of them costs little more than one for each
(see ``AttemptRecorder.record`` for why SQLite records on the loop at all).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from embargo_bot.store import STORE_FAULTS, Store, is_locked

log = logging.getLogger(__name__)

Work = Callable[[Store], None]


class LoopCommits:
    """Commits on the loop through a connection that never waits for the write lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[Work, asyncio.Future[bool]]] = []

    @classmethod
    def on(cls, store: Store) -> LoopCommits | None:
        """A second connection to ``store`` for this; None on PostgreSQL, where every
        write may wait on the network (``Store.without_waiting``)."""
        quick = store.without_waiting()
        return None if quick is None else cls(quick)

    async def commit(self, work: Work) -> bool:
        """``work`` committed, with the others of this turn; False (nothing written) if
        another connection holds the write lock: the caller's thread then waits for it.

        ``work`` must be atomic by itself: if the shared commit fails for another
        reason, each is tried alone, so one's error is never another's.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, done))
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._commit)
        return await done

    def _commit(self) -> None:
        group, self._waiting = self._waiting, []
        if len(group) > 1:
            try:
                with self.store.transaction():
                    for work, _ in group:
                        work(self.store)
            except STORE_FAULTS as exc:
                if is_locked(exc):
                    for _, done in group:
                        _settle(done, False)
                    return
                log.debug("a shared commit failed (%s); trying each alone", type(exc).__name__)
            else:
                for _, done in group:
                    _settle(done, True)
                return
        for work, done in group:
            try:
                work(self.store)
            except STORE_FAULTS as exc:
                if is_locked(exc):
                    _settle(done, False)
                elif not done.done():
                    done.set_exception(exc)
            else:
                _settle(done, True)

    def close(self) -> None:
        self.store.close()


def _settle(done: asyncio.Future[bool], written: bool) -> None:
    if not done.done():  # the caller was cancelled (a stop): nobody waits for it
        done.set_result(written)
