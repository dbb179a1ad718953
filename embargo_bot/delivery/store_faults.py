"""Faults of the store's disk met while running: said once a minute, not at every poll."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from embargo_bot.store import describe_fault

log = logging.getLogger(__name__)

# The same fault is repeated in the log at most this often, in seconds.
REPEAT_EVERY = 60.0


class FaultLog:
    """Logs each kind of store fault once, then again only after ``REPEAT_EVERY``."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._last: dict[str, float] = {}

    def report(self, exc: Exception, doing: str) -> None:
        message = str(describe_fault(exc, self._path))
        now = time.monotonic()
        last = self._last.get(message)
        if last is not None and now - last < REPEAT_EVERY:
            return
        self._last[message] = now
        log.error("%s (while %s); trying again until there is room", message, doing)
