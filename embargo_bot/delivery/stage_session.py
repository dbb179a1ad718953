"""Sending one claimed stage: every recipient over reused connections, each outcome recorded.

Recording happens after the relay's answer and before the next message, one
commit per message (``recording``), so a crash at any point leaves at most the
message in flight unrecorded: a restart sends it again rather than losing it.
A message carries one recipient, or with EMBARGO_BOT_SMTP_MAX_RECIPIENTS
above 1 several of one list (``outgoing``); the relay's rate counts messages.

While a stage sends, a watcher keeps its claim alive and stops it if the pack
is withdrawn, or changes under it (rescheduled or amended): the stage is then
handed back and restarts with a message that says the new thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from embargo_bot.delivery.loop_commits import LoopCommits
from embargo_bot.delivery.outgoing import ListNames, Outgoing, plan_stage
from embargo_bot.delivery.pacing import ByteBudget, RateLimiter
from embargo_bot.delivery.recording import AttemptRecorder
from embargo_bot.delivery.retry import RetryPolicy
from embargo_bot.delivery.rules import may_send, message_date
from embargo_bot.delivery.smtp import RelayConfig, RelaySession
from embargo_bot.delivery.store_faults import FaultLog
from embargo_bot.delivery.store_thread import StoreThread, on_store
from embargo_bot.delivery.store_wait import DatabaseWatch
from embargo_bot.delivery.work_queue import DeliveryQueue
from embargo_bot.domain.outcomes import Outcome, OutcomeKind
from embargo_bot.domain.packs import (
    NewStage,
    Pack,
    PackState,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.domain.reports import LEFT_OUT_NOTES
from embargo_bot.domain.times import Clock
from embargo_bot.messages.builder import BuiltMessage
from embargo_bot.messages.link_alerts import AlertWords
from embargo_bot.messages.mime import MessageCopies, personal_headers
from embargo_bot.security.audit import Auditor
from embargo_bot.security.smime import encrypt_entity, load_recipient_certificate
from embargo_bot.store import STORE_FAULTS, Store
from embargo_bot.store.loop_outcomes import LoopOutcomes

log = logging.getLogger(__name__)


# What still goes once a pack is withdrawn: the withdrawal, and mail to the contact.
_AFTER_WITHDRAWAL = (StageKind.WITHDRAWN, StageKind.REPORT, StageKind.ALERT)
# Stages that report to the official when they finish; not reports and test sends.
REPORTED_KINDS = (
    StageKind.NOTICE,
    StageKind.LIVE,
    StageKind.CHANGED,
    StageKind.UPDATED,
    StageKind.WITHDRAWN,
)


@dataclass(frozen=True)
class SendingContext:
    """What a sending stage needs from the instance that claimed it."""

    store: Store
    relay: RelayConfig
    connections: int
    lease: timedelta
    retry: RetryPolicy
    clock: Clock
    owner: str
    sender_address: str
    limiter: RateLimiter
    budget: ByteBudget
    audit: Auditor
    faults: FaultLog
    # Envelope recipients a message may carry (EMBARGO_BOT_SMTP_MAX_RECIPIENTS).
    max_recipients: int = 1
    # Where the per-message record runs, off the event loop (None: on it, in tests).
    thread: StoreThread | None = None
    # SQLite: a connection that records on the loop when no other is writing.
    quick: LoopCommits | None = None
    # PostgreSQL: the async driver that records on the loop.
    on_loop: LoopOutcomes | None = None


class StageSession:
    """One claimed stage while it is being sent."""

    def __init__(
        self, context: SendingContext, pack: Pack, stage: Stage, stop: asyncio.Event
    ) -> None:
        self.context = context
        self.store = context.store
        self.pack = pack
        self.stage = stage
        self.stop = stop
        self.halt = asyncio.Event()  # withdrawn, changed, lease lost, or too early
        self.halt_reason = ""
        self.recorder = AttemptRecorder(
            context.store,
            context.clock,
            context.retry,
            stage,
            self.label,
            thread=context.thread,
            quick=context.quick,
            on_loop=context.on_loop,
        )
        # Nothing more goes to the relay while its outcome could not be recorded.
        self.database = DatabaseWatch(context.faults, stop)

    @property
    def label(self) -> str:
        return f"pack {self.pack.id}: {self.stage.label}"

    def fail(self, reason: str) -> None:
        """The stage could not start (e.g. no usable list): close it with a report."""
        self._finish(StageState.FAILED, reason)
        log.error("%s could not start: %s", self.label, reason)

    async def send(
        self,
        built: BuiltMessage,
        warm: list[RelaySession],
        list_names: ListNames | None = None,
        planned: list[Outgoing] | None = None,
    ) -> None:
        """Send to every pending recipient over reused connections, then close the stage.

        ``planned``: the messages, read and planned ahead (the live email, just
        before the lift) by the instance that has now claimed the stage afresh.
        """
        context = self.context
        messages = planned
        if messages is None:
            messages = plan_stage(self.store, self.stage, context.max_recipients, list_names)
        recipients = sum(len(message.deliveries) for message in messages)
        started = time.monotonic()
        log.info("%s started: %d to send in %d message(s)", self.label, recipients, len(messages))
        queue = DeliveryQueue((self._ready_at(m), m) for m in messages)
        watcher = asyncio.create_task(self._watch(queue))
        try:
            workers = min(context.connections, max(1, len(messages)))
            sessions = [warm.pop() if warm else RelaySession(context.relay) for _ in range(workers)]
            for unused in warm:
                unused.discard()
            await asyncio.gather(*(self._worker(queue, built, s) for s in sessions))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self._close(time.monotonic() - started)

    def _ready_at(self, message: Outgoing) -> float:
        """A monotonic time for a message's next try: now, or its recorded retry time."""
        waits = [d.next_attempt_at for d in message.deliveries if d.next_attempt_at is not None]
        if not waits:
            return 0.0
        wait = (max(waits) - self.context.clock()).total_seconds()
        return time.monotonic() + max(0.0, wait)

    def _finish(self, state: StageState, detail: str) -> None:
        """Close the stage, with its delivery report and audit entry, in one commit."""
        note = self.store.stage(self.stage.id).detail
        if note and note.startswith(LEFT_OUT_NOTES):
            detail = f"{detail}; {note}"  # the report must say who was not sent to, and why
        if note and self.stage.kind is StageKind.ALERT:
            # Its words were the message (a bounce's alert too); `show` keeps what it was about.
            detail = f"{AlertWords.from_detail(note).headline} ({detail})"
        with self.store.transaction():
            self.store.finish_stage(
                self.stage.id,
                self.context.clock(),
                state,
                detail,
                owner=self.context.owner,
                report=self._report() if state is not StageState.CANCELLED else None,
            )
            self.context.audit(
                f"stage {state}", self.pack.id, stage=self.stage.label, detail=detail
            )
        try:
            self.store.checkpoint()  # keep the write-ahead log small on a small disk
        except STORE_FAULTS as exc:
            self.context.faults.report(exc, f"checkpointing after {self.label}")

    def _report(self) -> NewStage | None:
        if self.stage.kind not in REPORTED_KINDS:
            return None
        return NewStage(StageKind.REPORT, self.context.clock(), report_of=self.stage.id)

    async def _worker(
        self, queue: DeliveryQueue[Outgoing], built: BuiltMessage, session: RelaySession
    ) -> None:
        context = self.context
        async with session:
            while not (self.stop.is_set() or self.halt.is_set()):
                message = await queue.take()
                if message is None:
                    return
                if self.stop.is_set() or self.halt.is_set():
                    await queue.done(message)  # left pending for the next run
                    return
                if not may_send(self.stage.kind, self.pack, context.clock()):
                    self._halt("the clock is before the lift: nothing more goes until it lifts")
                    await queue.done(message)
                    return
                if not self.database.ok.is_set():
                    await self.database.until_back(self.stop, self.halt)
                    if self.stop.is_set() or self.halt.is_set():
                        await queue.done(message)  # left pending for the next run
                        return
                # Waits end early on a stop: a backoff must not hold up a clean shutdown.
                await self._pause(self.recorder.gate.remaining())
                if context.limiter.limited and not await self._take_slot(queue, message):
                    return
                if self.halt.is_set():
                    await queue.done(message)  # left pending for the next run
                    return
                try:
                    if message.needs_binding:
                        self.store.bind_message(self.stage.id, message.envelope, message.message_id)
                except STORE_FAULTS as exc:
                    await self._store_fault(exc, queue, message)
                    return
                async with context.budget.hold(built.copies.size):
                    outcomes = await self._offer(message, built, session)
                record = functools.partial(self.recorder.record, message, outcomes, built)
                try:
                    # An outcome the relay gave is kept until the database takes it.
                    retry_at, again = await self.database.persist(f"recording {self.label}", record)
                except STORE_FAULTS as exc:
                    # Left pending: sent again when the store can be written, never lost.
                    await self._store_fault(exc, queue, message)
                    return
                await queue.done(message, retry_at=retry_at, again=again)

    async def _take_slot(self, queue: DeliveryQueue[Outgoing], message: Outgoing) -> bool:
        """Wait for the message's send slot; False (the message put back) if it cannot go."""
        try:
            # The relay's cap counts messages; with a shared rate the slot is the store's.
            wait = await self.database.persist("taking a send slot", self.context.limiter.next_wait)
        except STORE_FAULTS as exc:
            self.context.faults.report(exc, f"taking a send slot for {self.label}")
            self._halt("the store cannot be written")
            await queue.done(message)
            return False
        await self._pause(wait)
        await self._pause(self.context.limiter.until_handing())
        return True

    async def _store_fault(
        self, exc: Exception, queue: DeliveryQueue[Outgoing], message: Outgoing
    ) -> None:
        self.context.faults.report(exc, f"recording {self.label}")
        self._halt("the store cannot be written")
        await queue.done(message)

    async def _offer(
        self, message: Outgoing, built: BuiltMessage, session: RelaySession
    ) -> tuple[Outcome, ...]:
        """Hand one message to the relay: each recipient's outcome, in envelope order."""
        try:
            data = self._personalised(built.copies, message)
        except ValueError as exc:
            # Never in clear to someone whose list says encrypt: fail instead.
            return (Outcome(OutcomeKind.PERMANENT, None, f"not sent: {exc}"),) * len(
                message.deliveries
            )
        first = message.first
        # A VERP token names one delivery: a shared message is matched by its Message-ID.
        token = first.verp_token if len(message.deliveries) == 1 else None
        return await session.send(self.context.sender_address, message.envelope, data, token=token)

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.halt.wait(), timeout=seconds)

    def _personalised(self, copies: MessageCopies, outgoing: Outgoing) -> bytes:
        """The message for these recipients, encrypted to the recipient's certificate if they
        have one. A certificate holder's message is always theirs alone (``plan_messages``)."""
        delivery = outgoing.first
        if len(outgoing.deliveries) > 1 and any(d.certificate for d in outgoing.deliveries):
            raise ValueError("an encrypted message goes to its one recipient alone")
        personal = personal_headers(
            to_address=delivery.email,
            to_name=delivery.name,
            message_id=outgoing.message_id,
            date=message_date(self.stage.kind, self.pack, delivery.created_at),
            to_group=outgoing.to_group,
        )
        if delivery.certificate is None:
            return copies.headed(personal)
        certificate = load_recipient_certificate(
            Path(delivery.certificate), delivery.email, now=self.context.clock()
        )
        message = copies.message()
        encrypted = replace(message, body=encrypt_entity(message.body, certificate))
        del message  # the clear copy goes before the encrypted one is sent
        return encrypted.headed(personal)

    async def _watch(self, queue: DeliveryQueue[Outgoing]) -> None:
        """Keep the claim alive; stop if the pack is withdrawn or changes under this stage."""
        try:
            await self._watch_pack()
        finally:
            await queue.close()

    async def _watch_pack(self) -> None:
        interval = min(0.5, self.context.lease.total_seconds() / 3)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=interval)
            if self.stop.is_set():
                self._halt("the service is stopping")
                return
            try:
                reason = await on_store(self.context.thread, self.store, self._why_not_ours)
                if reason is not None:
                    self._halt(reason)
                    return
                self.database.back()
            except STORE_FAULTS as exc:
                # Seen here within half a second: the workers stop handing messages over.
                if self.database.lost(exc, f"watching {self.label}"):
                    continue
                self.context.faults.report(exc, f"watching {self.label}")
                self._halt("the store cannot be written")
                return

    def _why_not_ours(self, store: Store) -> str | None:
        """Why the stage may not go on (the pack changed, or we lost it); None: it may,
        and our claim is renewed. Runs on the store's thread: another connection
        writing (a command, a second instance on SQLite) must not stall the loop."""
        context, pack, kind = self.context, self.pack, self.stage.kind
        state, version, lift_seq = store.pack_state(pack.id)
        if state is PackState.CANCELLED and kind not in _AFTER_WITHDRAWAL:
            return "the pack was withdrawn"
        if kind in (StageKind.NOTICE, StageKind.UPDATED) and version != pack.version:
            return "the pack was amended: restarting with the new version"
        if kind in (StageKind.NOTICE, StageKind.UPDATED, StageKind.CHANGED) and (
            lift_seq != pack.lift_seq
        ):
            return "the embargo was rescheduled: restarting with the new lift"
        lease_until = context.clock() + context.lease
        if not store.renew_lease(self.stage.id, context.owner, lease_until):
            return "another instance took over this stage"
        return None

    def _halt(self, reason: str) -> None:
        if not self.halt.is_set():
            self.halt_reason = reason
            self.halt.set()
            log.warning("%s stopping: %s", self.label, reason)

    def _close(self, elapsed: float) -> None:
        try:
            self._close_stage(elapsed)
        except STORE_FAULTS as exc:
            self.context.faults.report(exc, f"closing {self.label}")
            log.warning(
                "%s paused: the store cannot be written; it resumes from what was recorded "
                "when it can (once its claim runs out)",
                self.label,
            )

    def _close_stage(self, elapsed: float) -> None:
        context, store, stage = self.context, self.store, self.stage
        now = context.clock()
        state, _, _ = store.pack_state(self.pack.id)
        if state is PackState.CANCELLED and stage.kind is not StageKind.WITHDRAWN:
            store.cancel_pending(stage.id, now, "not sent: the pack was withdrawn")
            self._finish(StageState.CANCELLED, "pack withdrawn")
            log.warning("%s cancelled part-way: the pack was withdrawn", self.label)
            return
        summary = store.stage_summary(stage.id)
        if summary.pending:
            store.release_stage(stage.id, context.owner)
            log.info(
                "%s paused after %.1fs with %d still to send (%s)",
                self.label,
                elapsed,
                summary.pending,
                self.halt_reason or "stopping",
            )
            return
        detail = f"{summary.sent} sent, {summary.failed} failed"
        self._finish(StageState.DONE, detail)
        log.info("%s finished in %.1fs: %s", self.label, elapsed, detail)
