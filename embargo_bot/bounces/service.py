"""The service's bounce reader: one read of the mailbox every BOUNCE_POLL seconds.

Each read runs in a thread of its own with a Store of its own, opened and
closed there, since a Store is for one thread; the event loop that sends
stages never waits on IMAP. A failed read (server down, login refused, too
slow, the store unreachable) is logged with its reason and tried again after
a growing pause; it never touches a stage, so the live email goes at the lift
whatever the mailbox does.

Not ``asyncio.to_thread``: the event loop's default executor is joined when
the loop closes, so a mailbox that never answers would hold up the service's
stop for the whole IMAP timeout. At a stop, a read in progress is left to end
on its own (a daemon thread); if the process ends first, that is a crash
between applying and marking, which the store's once-only key covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from embargo_bot.bounces.dsn import Action
from embargo_bot.bounces.mailbox import MailboxError, MailboxSettings
from embargo_bot.bounces.matching import DeliveryRef, Matched
from embargo_bot.bounces.reader import ReadSummary, Skipped, read_once
from embargo_bot.domain.bounces import Bounced, BounceNote, DeliveryRow, alert_words
from embargo_bot.domain.times import Clock
from embargo_bot.store import Store

log = logging.getLogger(__name__)

# However long the outage, the mailbox is tried at least this often.
MAX_BACKOFF = 15 * 60.0


def _ref(row: DeliveryRow) -> DeliveryRef:
    return DeliveryRef(row.order, row.pack_id, row.kind, row.email, stage_id=row.stage_id)


class StoreLookup:
    """``matching.DeliveryLookup`` over the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def by_verp_token(self, token: str) -> DeliveryRef | None:
        row = self._store.delivery_by_verp_token(token)
        return None if row is None else _ref(row)

    def by_message_id(self, message_id: str) -> list[DeliveryRef]:
        return [_ref(row) for row in self._store.deliveries_by_message_id(message_id)]

    def by_recipient(self, recipient: str, pack: str) -> list[DeliveryRef]:
        return [_ref(row) for row in self._store.deliveries_to(recipient, pack)]


class StoreApplier:
    """``reader.Applier`` over the store: each notification once, across instances."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        instance: str | None = None,
        *,
        audit_key: bytes | None = None,
    ) -> None:
        self._store, self._clock, self._instance = store, clock, instance
        self._audit_key = audit_key

    def apply(self, key: str, matched: Sequence[Matched]) -> bool:
        notes = [
            BounceNote(
                stage_id=m.delivery.stage_id,
                email=m.delivery.recipient,
                failed=m.status.action is Action.FAILED,
                status=m.status.status,
                diagnostic=m.status.diagnostic,
            )
            for m in matched
        ]
        now = self._clock()
        # The bounces and their audit entries commit together, or not at all.
        with self._store.transaction():
            bounced = self._store.apply_bounces(key, notes, now, instance=self._instance)
            for item in bounced or ():
                self._audit(item, now)
        if bounced is None:
            return False
        for item in bounced:
            log.warning("pack %s: %s; the contact is alerted", item.pack_id, alert_words(item))
        for note in notes:
            if not note.failed:
                log.info("%s: delivery delayed: %s %s", note.email, note.status, note.diagnostic)
        return True

    def _audit(self, item: Bounced, now: datetime) -> None:
        if self._audit_key is None:
            return
        self._store.append_audit(
            self._audit_key,
            at=now,
            actor="bounce reader" if self._instance is None else f"service {self._instance}",
            action="delivery bounced",
            pack_id=item.pack_id,
            detail={
                "stage": item.kind,
                "email": item.email,
                "list": item.list_key,
                "status": item.report.status,
                "diagnostic": item.report.diagnostic,
            },
        )


@dataclass(frozen=True)
class BounceReading:
    mailbox: MailboxSettings
    return_path: str | None  # the VERP base when VERP is on, else None
    poll: float  # seconds between reads
    open_store: Callable[[], Store]  # called in the worker thread
    clock: Clock
    instance: str | None = None
    audit_key: bytes | None = field(default=None, repr=False)  # the audit chain's HMAC key


class BounceReader:
    """Reads the bounce mailbox until told to stop."""

    def __init__(self, reading: BounceReading) -> None:
        self.reading = reading
        self.skipped = Skipped()
        self.failures = 0
        self.last: ReadSummary | None = None

    def read(self) -> ReadSummary:
        """One read, blocking: for the worker thread."""
        store = self.reading.open_store()
        try:
            return read_once(
                self.reading.mailbox,
                StoreLookup(store),
                StoreApplier(
                    store,
                    self.reading.clock,
                    self.reading.instance,
                    audit_key=self.reading.audit_key,
                ),
                return_path=self.reading.return_path,
                skipped=self.skipped,
            )
        finally:
            store.close()

    async def run(self, stop: asyncio.Event) -> None:
        where = f"{self.reading.mailbox.host}:{self.reading.mailbox.port}"
        log.info("reading bounces from IMAP %s every %gs", where, self.reading.poll)
        while not stop.is_set():
            wait = self.reading.poll
            try:
                summary = await self._read_unless_stopped(stop)
                if summary is None:
                    log.info("bounce mailbox: stopping without waiting for the read in progress")
                    return
            except MailboxError as exc:
                wait = self._failed(f"bounce mailbox not read: {exc}")
            except Exception as exc:  # the store, or anything else: never stop the service
                words = " ".join(str(exc).split()) or type(exc).__name__
                wait = self._failed(f"bounce mailbox not read: {words}")
            else:
                if self.failures:
                    log.info(
                        "bounce mailbox IMAP %s read again after %d failure(s)",
                        where,
                        self.failures,
                    )
                self.failures, self.last = 0, summary
                if summary.applied or summary.already_applied:
                    log.info(
                        "bounce mailbox: %d notification(s) applied, %d before, %d left unread",
                        summary.applied,
                        summary.already_applied,
                        summary.left_unread,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _read_unless_stopped(self, stop: asyncio.Event) -> ReadSummary | None:
        """One read in a daemon thread; None if ``stop`` is set before it ends."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[ReadSummary] = loop.create_future()

        def work() -> None:
            try:
                summary = self.read()
            except Exception as exc:
                settle = _settler(outcome, exc)
            else:
                settle = _settler(outcome, summary)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                loop.call_soon_threadsafe(settle)

        threading.Thread(target=work, name="bounce-reader", daemon=True).start()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((outcome, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not outcome.done():
            outcome.cancel()
            return None
        return outcome.result()

    def _failed(self, reason: str) -> float:
        self.failures += 1
        longest = max(MAX_BACKOFF, self.reading.poll)
        wait = min(self.reading.poll * 2.0 ** min(self.failures - 1, 30), longest)
        log.warning("%s; trying again in %gs", reason, wait)
        return wait


def _settler(
    outcome: asyncio.Future[ReadSummary], result: ReadSummary | Exception
) -> Callable[[], None]:
    """Sets ``outcome`` on the loop's thread, unless it was given up meanwhile."""

    def settle() -> None:
        if outcome.done():
            return
        if isinstance(result, Exception):
            outcome.set_exception(result)
        else:
            outcome.set_result(result)

    return settle
