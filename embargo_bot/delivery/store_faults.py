"""Faults of the store met while running: a full disk said once a minute, not at every
poll; a database server that went away said once when lost and once when back."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from embargo_bot.store import describe_fault

log = logging.getLogger(__name__)

# The same fault is repeated in the log at most this often, in seconds.
REPEAT_EVERY = 60.0
# Reconnecting to a database that went away: the first wait, and the longest.
FIRST_WAIT = 0.1
LONGEST_WAIT = 2.0
# After a restart each held connection finds itself cut in turn: a loss this soon
# after the database came back is the same outage, not one more to shout about.
SAME_OUTAGE = 10.0


class FaultLog:
    """Logs each kind of store fault once, then again only after ``REPEAT_EVERY``."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._last: dict[str, float] = {}
        self._lost_at: float | None = None
        self._back_at = float("-inf")
        self._quiet = False

    def report(self, exc: Exception, doing: str) -> None:
        message = str(describe_fault(exc, self._path))
        now = time.monotonic()
        last = self._last.get(message)
        if last is not None and now - last < REPEAT_EVERY:
            return
        self._last[message] = now
        log.error("%s (while %s); trying again until there is room", message, doing)

    @property
    def database_lost(self) -> bool:
        return self._lost_at is not None

    def lost(self, exc: Exception, doing: str) -> None:
        """The database server cannot be reached: said loudly, once per outage."""
        if self._lost_at is not None:
            return
        self._lost_at = time.monotonic()
        self._quiet = self._lost_at - self._back_at < SAME_OUTAGE
        if self._quiet:
            return
        cause = getattr(exc, "orig", None) or exc
        log.critical(
            "THE DATABASE CANNOT BE REACHED (%s; while %s): nothing is sent until it is back; "
            "what the relay already accepted is kept in memory and recorded when it is; "
            "reconnecting with backoff",
            " ".join(str(cause).split()) or type(cause).__name__,
            doing,
        )

    def back(self) -> None:
        if self._lost_at is None:
            return
        self._back_at = time.monotonic()
        if not self._quiet:
            log.warning(
                "the database is back after %.1fs: sending resumes", self._back_at - self._lost_at
            )
        self._lost_at = None


def next_wait(wait: float) -> float:
    """The backoff after ``wait`` (0 for the first): doubled, up to ``LONGEST_WAIT``."""
    return FIRST_WAIT if wait <= 0 else min(wait * 2, LONGEST_WAIT)
