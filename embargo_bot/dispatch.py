"""Sending one stage of one pack: claim it, fix its recipients, mail them, record each.

Recording happens after the relay's answer and before the next message, one
commit per message, so a crash at any point leaves at most the message in
flight unrecorded: a restart sends it again rather than losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from embargo_bot.compose import Sender, StageMessage, build_stage_message, new_message_id
from embargo_bot.compose import personalise as personalise_message
from embargo_bot.errors import EmbargoBotError, ListError
from embargo_bot.mailer import RelayConfig, RelaySession
from embargo_bot.outcomes import OutcomeKind
from embargo_bot.packs import (
    Delivery,
    DeliveryState,
    NewDelivery,
    Pack,
    PackContent,
    PackState,
    StageKind,
    StageState,
)
from embargo_bot.recipients import load_lists, select_lists, unique_recipients
from embargo_bot.rendering import Renderer
from embargo_bot.rules import Action, decide, may_send
from embargo_bot.store import Store
from embargo_bot.vault import Vault

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class DispatchConfig:
    sender: Sender
    relay: RelayConfig
    zone: ZoneInfo
    recipients_dir: Path
    connections: int
    lease: timedelta


class StageRunner:
    """Runs stages for one service instance (``owner``)."""

    def __init__(
        self,
        *,
        store: Store,
        vault: Vault,
        renderer: Renderer,
        config: DispatchConfig,
        clock: Clock,
        owner: str,
    ) -> None:
        self.store = store
        self.vault = vault
        self.renderer = renderer
        self.config = config
        self.clock = clock
        self.owner = owner

    async def run(self, pack_id: str, kind: StageKind, stop: asyncio.Event) -> None:
        """Send the stage if it is due and nobody else has it; otherwise do nothing."""
        now = self.clock()
        pack = self.store.get_pack(pack_id)
        decision = decide(pack, self.store.stage(pack_id, kind), now)
        if decision.action is Action.SKIP:
            if self.store.finish_stage(pack_id, kind, now, StageState.SKIPPED, decision.reason):
                log.warning("pack %s: %s skipped: %s", pack_id, kind, decision.reason)
            return
        if decision.action is not Action.SEND:
            return
        if not self.store.claim_stage(pack_id, kind, self.owner, now, now + self.config.lease):
            return
        session = _StageSession(self, pack, kind, stop)
        await session.run()

    def prepare_message(self, pack: Pack, kind: StageKind) -> StageMessage:
        content = self.open_content(pack.id) if kind is StageKind.NOTICE else None
        context = self.renderer.context(
            pack,
            content,
            kind,
            zone=self.config.zone,
            sender_name=self.config.sender.display_name,
        )
        rendered = self.renderer.render(kind, context)
        return build_stage_message(
            pack,
            kind,
            rendered,
            sender=self.config.sender,
            pdf=None if content is None else content.pdf,
        )

    def open_content(self, pack_id: str) -> PackContent:
        sealed = self.store.sealed_content(pack_id)
        return PackContent(
            pdf=self.vault.open(sealed.pdf),
            release=self.vault.open(sealed.release).decode("utf-8"),
            social=None if sealed.social is None else self.vault.open(sealed.social).decode(),
        )


class _StageSession:
    """The state of one claimed stage while it is being sent."""

    def __init__(self, runner: StageRunner, pack: Pack, kind: StageKind, stop: asyncio.Event):
        self.runner = runner
        self.store = runner.store
        self.pack = pack
        self.kind = kind
        self.stop = stop
        self.halt = asyncio.Event()  # cancelled, lease lost, or too early: stop sending
        self.halt_reason = ""

    @property
    def label(self) -> str:
        return f"pack {self.pack.id}: {self.kind}"

    async def run(self) -> None:
        runner, store, pack, kind = self.runner, self.store, self.pack, self.kind
        try:
            self._fix_recipients()
            message = runner.prepare_message(pack, kind)
        except EmbargoBotError as exc:
            store.finish_stage(
                pack.id, kind, runner.clock(), StageState.FAILED, str(exc), owner=runner.owner
            )
            log.error("%s stage could not start: %s", self.label, exc)
            return

        pending = store.deliveries(pack.id, kind, DeliveryState.PENDING)
        started = time.monotonic()
        log.info("%s stage started: %d to send", self.label, len(pending))
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        for delivery in pending:
            queue.put_nowait(delivery)
        watcher = asyncio.create_task(self._watch())
        try:
            workers = min(runner.config.connections, max(1, len(pending)))
            await asyncio.gather(*(self._worker(queue, message) for _ in range(workers)))
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self._close(time.monotonic() - started)

    def _fix_recipients(self) -> None:
        runner, pack = self.runner, self.pack
        catalogue = load_lists(runner.config.recipients_dir)
        try:
            lists = select_lists(catalogue, pack.list_keys, pack.classification)
        except ListError:
            if self.store.deliveries(pack.id, self.kind):
                return  # fixed on an earlier run: resume with those
            raise
        recipients = [
            NewDelivery(
                email=recipient.email,
                name=recipient.name,
                list_key=recipient.list_key,
                message_id=new_message_id(pack.id, self.kind, runner.config.sender),
            )
            for recipient in unique_recipients(lists)
        ]
        self.store.expand_stage(pack.id, self.kind, recipients, runner.clock())

    async def _worker(self, queue: asyncio.Queue[Delivery], message: StageMessage) -> None:
        runner, store = self.runner, self.store
        sender = runner.config.sender.address
        async with RelaySession(runner.config.relay) as session:
            while not (self.stop.is_set() or self.halt.is_set()):
                try:
                    delivery = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if not may_send(self.kind, self.pack, runner.clock()):
                    self._halt("the clock is before the lift: nothing more goes until it lifts")
                    return
                data = personalise_message(
                    message,
                    to_address=delivery.email,
                    to_name=delivery.name,
                    message_id=delivery.message_id,
                    date=delivery.created_at,
                )
                outcome = await session.send(sender, delivery.email, data)
                sent = outcome.kind is OutcomeKind.ACCEPTED
                store.record_delivery(
                    self.pack.id,
                    self.kind,
                    delivery.email,
                    DeliveryState.SENT if sent else DeliveryState.FAILED,
                    outcome.reply,
                    runner.clock(),
                )
                if not sent:
                    log.warning("%s to %s failed: %s", self.label, delivery.email, outcome.reply)

    async def _watch(self) -> None:
        """Keep the claim alive and notice a cancellation while sending."""
        runner = self.runner
        interval = min(1.0, runner.config.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            if self.store.pack_state(self.pack.id) is PackState.CANCELLED:
                self._halt("the pack was cancelled")
                return
            lease_until = runner.clock() + runner.config.lease
            if not self.store.renew_lease(self.pack.id, self.kind, runner.owner, lease_until):
                self._halt("another instance took over this stage")
                return

    def _halt(self, reason: str) -> None:
        if not self.halt.is_set():
            self.halt_reason = reason
            self.halt.set()
            log.warning("%s stage stopping: %s", self.label, reason)

    def _close(self, elapsed: float) -> None:
        runner, store, pack, kind = self.runner, self.store, self.pack, self.kind
        now = runner.clock()
        if store.pack_state(pack.id) is PackState.CANCELLED:
            store.cancel_pending(pack.id, kind, now)
            store.finish_stage(
                pack.id, kind, now, StageState.CANCELLED, "pack cancelled", owner=runner.owner
            )
            log.warning("%s stage cancelled part-way", self.label)
            return
        summary = store.stage_summary(pack.id, kind)
        if summary.pending:
            store.release_stage(pack.id, kind, runner.owner)
            log.info(
                "%s stage paused after %.1fs with %d still to send (%s)",
                self.label,
                elapsed,
                summary.pending,
                self.halt_reason or "stopping",
            )
            return
        detail = f"{summary.sent} sent, {summary.failed} failed"
        store.finish_stage(pack.id, kind, now, StageState.DONE, detail, owner=runner.owner)
        log.info("%s stage finished in %.1fs: %s", self.label, elapsed, detail)
