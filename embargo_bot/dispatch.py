"""Sending one stage: claim it, fix its recipients, mail them, record each.

Recording happens after the relay's answer and before the next message, one
commit per message, so a crash at any point leaves at most the message in
flight unrecorded: a restart sends it again rather than losing it.

While a stage sends, a watcher keeps its claim alive and stops it if the pack
is withdrawn, or changes under it (rescheduled or amended): the stage is then
handed back and restarts with a message that says the new thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from embargo_bot.audience import audience
from embargo_bot.compose import new_message_id
from embargo_bot.compose import personalise as personalise_message
from embargo_bot.errors import EmbargoBotError
from embargo_bot.mailer import RelayConfig, RelaySession
from embargo_bot.outcomes import OutcomeKind
from embargo_bot.packs import (
    Delivery,
    DeliveryState,
    NewDelivery,
    Pack,
    PackState,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.recipients import load_lists
from embargo_bot.rules import Action, decide, may_send
from embargo_bot.stage_messages import BuiltMessage, Clock, MessageBuilder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchConfig:
    relay: RelayConfig
    recipients_dir: Path
    connections: int
    lease: timedelta


class StageRunner:
    """Runs stages for one service instance (``owner``)."""

    def __init__(
        self, *, builder: MessageBuilder, config: DispatchConfig, clock: Clock, owner: str
    ) -> None:
        self.builder = builder
        self.store = builder.store
        self.config = config
        self.clock = clock
        self.owner = owner

    async def run(self, stage_id: int, stop: asyncio.Event) -> None:
        """Send the stage if it may go now and nobody else has it; otherwise do nothing."""
        now = self.clock()
        stage = self.store.stage(stage_id)
        pack = self.store.get_pack(stage.pack_id)
        decision = decide(pack, stage, now)
        if decision.action is Action.SKIP:
            if self.store.finish_stage(stage.id, now, StageState.SKIPPED, decision.reason):
                log.warning("pack %s: %s skipped: %s", pack.id, stage.label, decision.reason)
            return
        if decision.action is not Action.SEND:
            return
        if not self.store.claim_stage(stage.id, self.owner, now, now + self.config.lease):
            return
        # Re-read after the claim: the pack may have changed while we decided.
        session = _StageSession(
            self, self.store.get_pack(pack.id), self.store.stage(stage.id), stop
        )
        await session.run()


class _StageSession:
    """One claimed stage while it is being sent."""

    def __init__(self, runner: StageRunner, pack: Pack, stage: Stage, stop: asyncio.Event):
        self.runner = runner
        self.store = runner.store
        self.pack = pack
        self.stage = stage
        self.stop = stop
        self.halt = asyncio.Event()  # withdrawn, changed, lease lost, or too early
        self.halt_reason = ""

    @property
    def label(self) -> str:
        return f"pack {self.pack.id}: {self.stage.label}"

    async def run(self) -> None:
        runner, store = self.runner, self.store
        try:
            self._fix_recipients()
            built = runner.builder.build(self.pack, self.stage)
        except EmbargoBotError as exc:
            store.finish_stage(
                self.stage.id, runner.clock(), StageState.FAILED, str(exc), owner=runner.owner
            )
            log.error("%s could not start: %s", self.label, exc)
            return

        pending = store.deliveries(
            self.pack.id, stage_id=self.stage.id, state=DeliveryState.PENDING
        )
        started = time.monotonic()
        log.info("%s started: %d to send", self.label, len(pending))
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        for delivery in pending:
            queue.put_nowait(delivery)
        watcher = asyncio.create_task(self._watch())
        try:
            workers = min(runner.config.connections, max(1, len(pending)))
            await asyncio.gather(*(self._worker(queue, built) for _ in range(workers)))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self._close(time.monotonic() - started)

    def _fix_recipients(self) -> None:
        runner, pack, stage = self.runner, self.pack, self.stage
        if self.store.is_expanded(stage.id):
            return  # fixed on an earlier run: resume with those
        recipients = audience(
            pack,
            stage,
            catalogue=load_lists(runner.config.recipients_dir),
            holders=self.store.holders(pack.id),
            earlier_waves=self.store.notice_addresses(pack.id, other_than=stage.id),
        )
        sender = runner.builder.sender
        self.store.expand_stage(
            stage.id,
            [
                NewDelivery(
                    email=recipient.email,
                    name=recipient.name,
                    list_key=recipient.list_key,
                    message_id=new_message_id(pack.id, stage.kind, sender),
                )
                for recipient in recipients
            ],
            runner.clock(),
        )

    async def _worker(self, queue: asyncio.Queue[Delivery], built: BuiltMessage) -> None:
        runner, store = self.runner, self.store
        sender = runner.builder.sender.address
        async with RelaySession(runner.config.relay) as session:
            while not (self.stop.is_set() or self.halt.is_set()):
                try:
                    delivery = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if not may_send(self.stage.kind, self.pack, runner.clock()):
                    self._halt("the clock is before the lift: nothing more goes until it lifts")
                    return
                data = personalise_message(
                    built.message,
                    to_address=delivery.email,
                    to_name=delivery.name,
                    message_id=delivery.message_id,
                    date=delivery.created_at,
                )
                outcome = await session.send(sender, delivery.email, data)
                sent = outcome.kind is OutcomeKind.ACCEPTED
                store.record_delivery(
                    self.stage.id,
                    delivery.email,
                    DeliveryState.SENT if sent else DeliveryState.FAILED,
                    outcome.reply,
                    runner.clock(),
                    version=built.version,
                    lift_seq=built.lift_seq,
                )
                if not sent:
                    log.warning("%s to %s failed: %s", self.label, delivery.email, outcome.reply)

    async def _watch(self) -> None:
        """Keep the claim alive; stop if the pack is withdrawn or changes under this stage."""
        runner, pack, kind = self.runner, self.pack, self.stage.kind
        interval = min(0.5, runner.config.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            state, version, lift_seq = self.store.pack_state(pack.id)
            if state is PackState.CANCELLED and kind is not StageKind.WITHDRAWN:
                self._halt("the pack was withdrawn")
                return
            if kind in (StageKind.NOTICE, StageKind.UPDATED) and version != pack.version:
                self._halt("the pack was amended: restarting with the new version")
                return
            if kind in (StageKind.NOTICE, StageKind.UPDATED, StageKind.CHANGED) and (
                lift_seq != pack.lift_seq
            ):
                self._halt("the embargo was rescheduled: restarting with the new lift")
                return
            lease_until = runner.clock() + runner.config.lease
            if not self.store.renew_lease(self.stage.id, runner.owner, lease_until):
                self._halt("another instance took over this stage")
                return

    def _halt(self, reason: str) -> None:
        if not self.halt.is_set():
            self.halt_reason = reason
            self.halt.set()
            log.warning("%s stopping: %s", self.label, reason)

    def _close(self, elapsed: float) -> None:
        runner, store, stage = self.runner, self.store, self.stage
        now = runner.clock()
        state, _, _ = store.pack_state(self.pack.id)
        if state is PackState.CANCELLED and stage.kind is not StageKind.WITHDRAWN:
            store.cancel_pending(stage.id, now, "not sent: the pack was withdrawn")
            store.finish_stage(
                stage.id, now, StageState.CANCELLED, "pack withdrawn", owner=runner.owner
            )
            log.warning("%s cancelled part-way: the pack was withdrawn", self.label)
            return
        summary = store.stage_summary(stage.id)
        if summary.pending:
            store.release_stage(stage.id, runner.owner)
            log.info(
                "%s paused after %.1fs with %d still to send (%s)",
                self.label,
                elapsed,
                summary.pending,
                self.halt_reason or "stopping",
            )
            return
        detail = f"{summary.sent} sent, {summary.failed} failed"
        store.finish_stage(stage.id, now, StageState.DONE, detail, owner=runner.owner)
        log.info("%s finished in %.1fs: %s", self.label, elapsed, detail)
