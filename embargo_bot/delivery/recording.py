"""Recording what the relay said about one message: each recipient's outcome, one commit.

Each recipient's outcome is their own (a refused RCPT fails or retries only
that recipient); the message is retried for those with a temporary outcome
only, as the same message, at one time for all of them.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from datetime import datetime, timedelta

from embargo_bot.delivery.loop_commits import LoopCommits
from embargo_bot.delivery.outgoing import Outgoing
from embargo_bot.delivery.pacing import RelayGate
from embargo_bot.delivery.retry import RetryPolicy
from embargo_bot.delivery.smtp_errors import relay_problem
from embargo_bot.delivery.store_thread import StoreThread, commit_on_store
from embargo_bot.domain.outcomes import Outcome, OutcomeKind
from embargo_bot.domain.packs import Delivery, DeliveryState, Stage, StageKind
from embargo_bot.domain.times import Clock
from embargo_bot.messages.builder import BuiltMessage
from embargo_bot.store import Store
from embargo_bot.store.delivery_queries import attempt_params
from embargo_bot.store.loop_outcomes import LoopOutcomes

log = logging.getLogger(__name__)

# While the relay is down at the lift, try it at least this often.
LIVE_RELAY_PROBE = timedelta(seconds=30)


class AttemptRecorder:
    """Records a stage's attempts, and closes every connection's gate while the relay is down."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        retry: RetryPolicy,
        stage: Stage,
        label: str,
        *,
        thread: StoreThread | None = None,
        quick: LoopCommits | None = None,
        on_loop: LoopOutcomes | None = None,
    ) -> None:
        self.store = store
        self.thread = thread
        self.quick = quick
        self.on_loop = on_loop
        self.clock = clock
        self.retry = retry
        self.stage = stage
        self.label = label
        self.gate = RelayGate()
        # The relay problem last logged: said once per outage, not once per connection.
        self._reported: str | None = None

    async def record(
        self,
        message: Outgoing,
        outcomes: tuple[Outcome, ...],
        built: BuiltMessage,
    ) -> tuple[float | None, Outgoing | None]:
        """Record one message's outcomes; the monotonic time to try again, and for whom.

        With ``quick`` (SQLite), committed on the loop, with the others of this
        turn, when no other connection is writing: the store's thread, for all
        that it keeps the loop from waiting on the database, takes the
        interpreter's lock from the loop at every step of a commit, which costs
        the SMTP sessions more than the commit itself. Another connection
        writing: the thread waits.

        With ``on_loop`` (PostgreSQL), one recipient's outcome is recorded from the
        loop by the async driver.

        Otherwise the commit runs on ``thread``, off the event loop, when there is
        one, shared with the outcomes other connections record meanwhile.
        """
        now = self.clock()
        if any(outcome.kind is OutcomeKind.ACCEPTED for outcome in outcomes):
            self.gate.reopen()
            self._reported = None
        temporary = [
            (delivery, outcome)
            for delivery, outcome in zip(message.deliveries, outcomes, strict=True)
            if outcome.kind is OutcomeKind.TEMPORARY
        ]
        retry_at = self._retry_time(temporary, now) if temporary else None
        states = []
        for outcome in outcomes:
            if outcome.kind is OutcomeKind.ACCEPTED:
                states.append(DeliveryState.SENT)
            elif outcome.kind is OutcomeKind.TEMPORARY and retry_at is not None:
                states.append(DeliveryState.PENDING)
            else:
                states.append(DeliveryState.FAILED)

        records = [
            attempt_params(
                self.stage.id,
                delivery.email,
                outcome,
                now,
                state=state,
                retry_at=retry_at if state is DeliveryState.PENDING else None,
                version=built.version,
                lift_seq=built.lift_seq,
            )
            for delivery, outcome, state in zip(message.deliveries, outcomes, states, strict=True)
        ]

        def write(store: Store) -> None:
            # One recipient's record is atomic by itself: a transaction, or on
            # PostgreSQL one statement (see ``StoreThread.commit``).
            with store.transaction() if len(records) > 1 else nullcontext():
                for record in records:
                    store.record_attempt_as(record)

        if self.on_loop is not None and len(records) == 1:
            await self.on_loop.record(records[0])
        elif self.quick is None or not await self.quick.commit(write):
            await commit_on_store(self.thread, self.store, write, atomic=True)
        for delivery, outcome, state in zip(message.deliveries, outcomes, states, strict=True):
            if state is DeliveryState.FAILED:
                log.warning("%s to %s failed: %s", self.label, delivery.email, outcome.reply)
        if retry_at is None:
            return None, None
        again = message.carrying(delivery.email for delivery, _ in temporary)
        return time.monotonic() + (retry_at - now).total_seconds(), again

    def _retry_time(
        self, temporary: list[tuple[Delivery, Outcome]], now: datetime
    ) -> datetime | None:
        policy = self.retry
        started = self.stage.started_at or now
        relay_level = next((o for _, o in temporary if o.relay_level), None)
        if relay_level is not None:
            # The relay, not these recipients, is the problem. Every connection
            # waits, and this message goes first when it is back.
            wait = policy.wait(self.gate.failures + 1)
            if self.stage.kind is StageKind.LIVE:
                wait = min(wait, LIVE_RELAY_PROBE)  # the public link must not wait long
            self.gate.close_for(wait.total_seconds())
            problem = "login" if relay_level.login_refused else "unreachable"
            if self._reported != problem:
                self._reported = problem
                level = logging.ERROR if self.stage.kind is StageKind.LIVE else logging.WARNING
                log.log(
                    level,
                    "%s: %s; trying again with backoff until %s",
                    self.label,
                    relay_problem(relay_level),
                    (started + policy.window).isoformat(timespec="seconds"),
                )
            return now if now < started + policy.window else None
        attempts = max(delivery.attempts for delivery, _ in temporary)
        return policy.next_try(attempt=attempts + 1, now=now, started=started)
