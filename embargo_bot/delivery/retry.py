"""When to try a message again: exponential backoff with jitter, within a deadline."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

# However long the deadline, no single wait grows past this: a relay that
# comes back should be used within minutes, not hours.
MAX_WAIT = timedelta(minutes=15)


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta
    window: timedelta  # from the stage's start; then a temporary failure is final

    def wait(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait after the ``attempt``-th failure: doubling, with "equal jitter".

        Half the wait is fixed and half random, so retries from many
        recipients spread out instead of hitting the relay together.
        """
        ceiling = min(MAX_WAIT, self.base * (1 << min(max(0, attempt - 1), 20)))
        share = rng.random() if rng is not None else random.random()  # noqa: S311 - jitter
        return ceiling / 2 + ceiling / 2 * share

    def next_try(
        self, *, attempt: int, now: datetime, started: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again, or None when the deadline leaves no room for another try."""
        at = now + self.wait(attempt, rng)
        return at if at <= started + self.window else None
