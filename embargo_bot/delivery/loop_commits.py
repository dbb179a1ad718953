"""SQLite outcomes committed on the event loop, those of one turn of it together.

The relay's replies to a stage's connections come in while the loop is busy
with another message; the sessions they wake record them in the same turn of
the loop, and one commit for all of them costs little more than one for each
(see ``AttemptRecorder.record`` for why SQLite records on the loop at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from embargo_bot.delivery.store_thread import in_one_commit
from embargo_bot.store import STORE_FAULTS, Store, is_locked

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
            shared = in_one_commit(self.store, [work for work, _ in group])
            locked = isinstance(shared, STORE_FAULTS) and is_locked(shared)
            if locked or not isinstance(shared, Exception):
                for _, done in group:
                    _settle(done, not locked)
                return
        for work, done in group:
            try:
                work(self.store)
            except Exception as exc:  # each caller's own, never left to the loop's handler
                if isinstance(exc, STORE_FAULTS) and is_locked(exc):
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
