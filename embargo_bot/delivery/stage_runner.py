"""Running stages for one service instance: decide, claim, prepare, then hand to sending.

Everything about the claim (may it go now, has someone else got it) and
about getting a stage ready (who it goes to, its message, its connections)
is here; sending it is ``stage_session.StageSession``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from embargo_bot.delivery.link_gate import LinkGate
from embargo_bot.delivery.loop_commits import LoopCommits
from embargo_bot.delivery.outgoing import Outgoing, plan_stage
from embargo_bot.delivery.pacing import ByteBudget, RateLimiter
from embargo_bot.delivery.retry import RetryPolicy
from embargo_bot.delivery.rules import Action, decide
from embargo_bot.delivery.shared_rate import SharedSlots
from embargo_bot.delivery.smtp import RelayConfig, RelaySession
from embargo_bot.delivery.stage_session import SendingContext, StageSession
from embargo_bot.delivery.store_faults import FaultLog
from embargo_bot.delivery.store_thread import StoreThread
from embargo_bot.domain.errors import EmbargoBotError
from embargo_bot.domain.packs import (
    NewDelivery,
    NewStage,
    Pack,
    PackState,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.domain.times import Clock
from embargo_bot.lists.audience import audience
from embargo_bot.lists.catalogue import ListCatalogue, load_lists
from embargo_bot.lists.parse import Recipient
from embargo_bot.messages.builder import BuiltMessage, MessageBuilder
from embargo_bot.messages.mime import new_message_id
from embargo_bot.security.audit import Auditor
from embargo_bot.store.loop_outcomes import LoopOutcomes

log = logging.getLogger(__name__)

# How long connections opened ahead of the lift are trusted to stay open.
WARM_FOR_SECONDS = 10.0


HELD_PREFIX = "lists held: "


def held_note(reasons: tuple[str, ...]) -> str:
    return (
        HELD_PREFIX
        + "; ".join(reasons)
        + " (their partners get the notice once the list is valid again, if before the lift)"
    )


def lists_needed(pack: Pack, stage: Stage) -> tuple[str, ...] | None:
    """The lists a stage's recipients come from (None: all, to find a test address).

    A big list the stage does not use is not parsed: at the lift that is time.
    """
    if stage.kind is StageKind.NOTICE:
        return stage.list_keys
    if stage.kind is StageKind.LIVE:
        return pack.list_keys
    return None if stage.kind is StageKind.TEST else ()


def alert_for(stage_id: int, now: datetime) -> NewStage:
    """The email that tells the contact at once that a wave is held back."""
    return NewStage(StageKind.ALERT, now, report_of=stage_id)


@dataclass(frozen=True)
class Prepared:
    """The live email made ready just before the lift, for the pack as it was then."""

    version: int
    lift_seq: int
    built: BuiltMessage
    # Its messages, from the deliveries pending then: good only if nobody has sent since.
    planned: list[Outgoing]


@dataclass(frozen=True)
class DispatchConfig:
    """How this instance sends: the relay, and how hard and how long to push it."""

    relay: RelayConfig
    recipients_dir: Path
    connections: int
    lease: timedelta
    retry: RetryPolicy
    rate_per_minute: int | None = None
    # Envelope recipients a message may carry (EMBARGO_BOT_SMTP_MAX_RECIPIENTS).
    max_recipients: int = 1


class StageRunner:
    """Runs stages for one service instance (``owner``)."""

    def __init__(
        self,
        *,
        builder: MessageBuilder,
        config: DispatchConfig,
        clock: Clock,
        owner: str,
        audit: Auditor,
        gate: LinkGate | None = None,
        thread: StoreThread | None = None,
    ) -> None:
        # None: EMBARGO_BOT_LINK_CHECK=false, the live email goes without checking the page.
        self.gate = gate
        self.builder = builder
        self.store = builder.store
        self.config = config
        self.clock = clock
        self.owner = owner
        self.audit = audit
        # One limiter for the whole instance: the relay's cap is per sender, not per stage;
        # with ``slots``, one for every instance, as the relay counts.
        self.thread = thread
        slots = SharedSlots(thread) if thread is not None else None
        self.limiter = RateLimiter(config.rate_per_minute, slots)
        self.budget = ByteBudget()
        self._prepared: dict[int, Prepared] = {}
        self._warm: dict[int, list[RelaySession]] = {}
        self.faults = FaultLog(self.store.path)
        self.context = SendingContext(
            store=self.store,
            relay=config.relay,
            connections=config.connections,
            lease=config.lease,
            retry=config.retry,
            clock=clock,
            owner=owner,
            sender_address=builder.sender.address,
            limiter=self.limiter,
            budget=self.budget,
            audit=audit,
            faults=self.faults,
            max_recipients=config.max_recipients,
            thread=thread,
            quick=LoopCommits.on(self.store) if thread is not None else None,
            on_loop=(
                LoopOutcomes.open(self.store.target, connections=config.connections)
                if thread is not None
                else None
            ),
        )
        # Lists' display names by key, for a shared message's To: (read with the lists).
        self._list_names: dict[str, str] = {}

    def fix_recipients(self, pack: Pack, stage: Stage) -> bool:
        """Fix who a stage goes to, once: a restart resumes with the same people.

        False when the stage was put on hold instead: a notice wave none of
        whose lists can be used now. A wave only some of whose lists can be
        used goes to those, and leaves a held stage for the others.
        """
        if self.store.is_expanded(stage.id):
            return True
        catalogue = load_lists(self.config.recipients_dir, only=lists_needed(pack, stage))
        self._remember_names(catalogue)
        chosen = audience(
            pack,
            stage,
            catalogue=catalogue,
            holders=self.store.holders(pack.id),
            earlier_waves=self.store.notice_addresses(pack.id, other_than=stage.id),
        )
        note = None
        if chosen.held_keys:
            note = held_note(chosen.skipped)
            log.error("pack %s: %s: %s", pack.id, stage.label, note)
            self.audit("lists held", pack.id, stage=stage.label, reasons=list(chosen.skipped))
            if len(chosen.held_keys) == len(dict.fromkeys(stage.list_keys)):
                return not self._hold(pack, stage, note)
        elif chosen.skipped:
            note = "lists left out: " + "; ".join(chosen.skipped)
            log.error("pack %s: %s: %s", pack.id, stage.label, note)
            self.audit("lists left out", pack.id, stage=stage.label, reasons=list(chosen.skipped))
        # One commit: a crash cannot leave the held share without the wave, or twice.
        with self.store.transaction():
            if chosen.held_keys:
                held = NewStage(
                    StageKind.NOTICE,
                    stage.due_at,
                    list_keys=chosen.held_keys,
                    wave=stage.wave,
                    held=True,
                )
                self.store.add_stage(pack.id, held)
                self.store.add_stage(pack.id, alert_for(stage.id, self.clock()))
            self.expand(pack, stage, chosen.recipients, note)
        return True

    def expand(
        self, pack: Pack, stage: Stage, recipients: list[Recipient], note: str | None
    ) -> None:
        sender = self.builder.sender
        self.store.expand_stage(
            stage.id,
            [
                NewDelivery(
                    email=recipient.email,
                    name=recipient.name,
                    list_key=recipient.list_key,
                    message_id=new_message_id(pack.id, stage.kind, sender),
                    certificate=None
                    if recipient.certificate is None
                    else str(recipient.certificate),
                )
                for recipient in recipients
            ],
            self.clock(),
            note=note,
        )

    def _hold(self, pack: Pack, stage: Stage, note: str) -> bool:
        """Hold the whole wave (claimed by us) and alert the contact, in one commit."""
        with self.store.transaction():
            if not self.store.hold_stage(stage.id, self.owner, note):
                return False
            self.store.add_stage(pack.id, alert_for(stage.id, self.clock()))
        return True

    def _remember_names(self, catalogue: ListCatalogue) -> None:
        self._list_names.update({key: found.name for key, found in catalogue.lists.items()})

    def list_names(self, keys: Collection[str]) -> Mapping[str, str]:
        """The names a shared message's To: gives these lists; read only those not yet known."""
        missing = set(keys) - set(self._list_names)
        if missing:
            # Fixed by another run, or since renamed: a list that cannot be read now
            # is named by its key (outgoing._name), which is only cosmetic.
            with contextlib.suppress(EmbargoBotError, OSError):
                self._remember_names(load_lists(self.config.recipients_dir, only=missing))
        return self._list_names

    async def prepare(self, stage_id: int) -> None:
        """Just before the lift, do everything but send: so the first message goes at once.

        Fixes the live stage's recipients, builds its message and opens its
        connections. Nothing is sent, and nothing here can send: the stage is
        only claimed, and each message only offered, at the lift.
        """
        stage = self.store.stage(stage_id)
        pack = self.store.get_pack(stage.pack_id)
        ready = pack.state is PackState.ACTIVE and not pack.awaiting_clearance
        if stage.kind is not StageKind.LIVE or stage.state is not StageState.SCHEDULED or not ready:
            return
        try:
            self.fix_recipients(pack, stage)
            self._prepared[stage.id] = Prepared(
                pack.version,
                pack.lift_seq,
                self.builder.build(pack, stage),
                plan_stage(self.store, stage, self.config.max_recipients, self.list_names),
            )
        except EmbargoBotError as exc:
            log.warning("pack %s: could not prepare the live email ahead: %s", pack.id, exc)
            return
        sessions = [RelaySession(self.config.relay) for _ in range(self.config.connections)]
        await asyncio.gather(*(session.open() for session in sessions))
        self.close_warm(stage.id)
        self._warm[stage.id] = sessions
        log.info("pack %s: live email ready, %d connection(s) open", pack.id, len(sessions))
        if self.gate is not None:
            await self.gate.warm(pack)

    def take_prepared(self, pack: Pack, stage: Stage) -> Prepared | None:
        prepared = self._prepared.pop(stage.id, None)
        if prepared is None or (prepared.version, prepared.lift_seq) != (
            pack.version,
            pack.lift_seq,
        ):
            return None  # amended or moved since: build it afresh
        return prepared

    def _not_ours(self, stage_id: int) -> None:
        """Another instance sends the stage: what was made ready ahead is let go, not left
        holding relay connections (a relay may cap them per account)."""
        self.close_warm(stage_id)
        self._prepared.pop(stage_id, None)

    def take_warm(self, stage_id: int) -> list[RelaySession]:
        return self._warm.pop(stage_id, [])

    async def close(self) -> None:
        """At the service's stop, once its stages have ended."""
        self.close_warm()
        if self.context.quick is not None:
            self.context.quick.close()
        if self.context.on_loop is not None:
            await self.context.on_loop.close()
        if self.thread is not None:
            self.thread.close()

    def close_warm(self, stage_id: int | None = None) -> None:
        """Close connections opened ahead for a stage (or all) that did not use them."""
        for key in [stage_id] if stage_id is not None else list(self._warm):
            for session in self._warm.pop(key, []):
                session.discard()

    async def run(self, stage_id: int, stop: asyncio.Event) -> None:
        """Send the stage if it may go now and nobody else has it; otherwise do nothing."""
        now = self.clock()
        stage = self.store.stage(stage_id)
        pack = self.store.get_pack(stage.pack_id)
        decision = decide(pack, stage, now)
        if decision.action is Action.SKIP:
            with self.store.transaction():
                if self.store.finish_stage(stage.id, now, StageState.SKIPPED, decision.reason):
                    self.audit("stage skipped", pack.id, stage=stage.label, reason=decision.reason)
                    log.warning("pack %s: %s skipped: %s", pack.id, stage.label, decision.reason)
            return
        if decision.action is not Action.SEND:
            if stage.state is not StageState.SCHEDULED:
                self._not_ours(stage.id)  # another instance has sent it, or is sending it
            return
        gated = self.gate is not None and stage.kind is StageKind.LIVE and self.gate.applies(pack)
        lease = self.gate.claim_lease() if gated and self.gate is not None else self.config.lease
        with self.store.transaction():
            claimed = self.store.claim_stage(stage.id, self.owner, now, now + lease)
            if claimed:
                self.audit("stage started", pack.id, stage=stage.label, stage_id=stage.id)
        if not claimed:
            self._not_ours(stage.id)
            return
        # Re-read after the claim: the pack may have changed while we decided.
        pack, stage = self.store.get_pack(pack.id), self.store.stage(stage.id)
        if gated and self.gate is not None:
            # No live email before the page answers (or `release`): checked at the lift.
            waited_from = time.monotonic()
            if not await self.gate.open_for_live(pack, stage, stop):
                self.close_warm(stage.id)
                return
            if time.monotonic() - waited_from > WARM_FOR_SECONDS:
                # A relay drops idle connections: after a wait, connect afresh rather than
                # meet a dead one and put a partner back by a retry's backoff.
                self.close_warm(stage.id)
            pack, stage = self.store.get_pack(pack.id), self.store.stage(stage.id)
        # Our claim stamped the start: nobody has sent any of it, so what was read ahead holds.
        untouched = stage.started_at == now
        session = StageSession(self.context, pack, stage, stop)
        try:
            if not self.fix_recipients(pack, stage):
                return  # held: the scheduler releases it once its lists are valid
            prepared = self.take_prepared(pack, stage)
            built = prepared.built if prepared else self.builder.build(pack, stage)
        except EmbargoBotError as exc:
            session.fail(str(exc))
            return
        planned = prepared.planned if prepared and untouched else None
        await session.send(built, self.take_warm(stage.id), self.list_names, planned)
