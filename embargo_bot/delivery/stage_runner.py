"""Running stages for one service instance: decide, claim, prepare, then hand to sending.

Everything about the claim (may it go now, has someone else got it) and
about getting a stage ready (who it goes to, its message, its connections)
is here; sending it is ``stage_session.StageSession``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from embargo_bot.delivery.outgoing import BATCHED_KINDS
from embargo_bot.delivery.pacing import ByteBudget, RateLimiter
from embargo_bot.delivery.retry import RetryPolicy
from embargo_bot.delivery.rules import Action, decide
from embargo_bot.delivery.smtp import RelayConfig, RelaySession
from embargo_bot.delivery.stage_session import SendingContext, StageSession
from embargo_bot.domain.errors import EmbargoBotError
from embargo_bot.domain.packs import NewDelivery, Pack, PackState, Stage, StageKind, StageState
from embargo_bot.domain.times import Clock
from embargo_bot.lists.audience import audience
from embargo_bot.lists.catalogue import ListCatalogue, load_lists
from embargo_bot.messages.builder import BuiltMessage, MessageBuilder
from embargo_bot.messages.mime import new_message_id
from embargo_bot.security.audit import Auditor

log = logging.getLogger(__name__)


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
    ) -> None:
        self.builder = builder
        self.store = builder.store
        self.config = config
        self.clock = clock
        self.owner = owner
        self.audit = audit
        # One limiter for the whole instance: the relay's cap is per sender, not per stage.
        self.limiter = RateLimiter(config.rate_per_minute)
        self.budget = ByteBudget()
        self._prepared: dict[int, tuple[int, int, BuiltMessage]] = {}
        self._warm: dict[int, list[RelaySession]] = {}
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
            max_recipients=config.max_recipients,
        )
        # Lists' display names by key, for a shared message's To: (read with the lists).
        self._list_names: dict[str, str] = {}

    def fix_recipients(self, pack: Pack, stage: Stage) -> None:
        """Fix who a stage goes to, once: a restart resumes with the same people."""
        if self.store.is_expanded(stage.id):
            return
        catalogue = load_lists(self.config.recipients_dir)
        self._remember_names(catalogue)
        chosen = audience(
            pack,
            stage,
            catalogue=catalogue,
            holders=self.store.holders(pack.id),
            earlier_waves=self.store.notice_addresses(pack.id, other_than=stage.id),
        )
        recipients = chosen.recipients
        sender = self.builder.sender
        note = None
        if chosen.skipped:
            note = "lists left out: " + "; ".join(chosen.skipped)
            log.error("pack %s: %s: %s", pack.id, stage.label, note)
            self.audit("lists left out", pack.id, stage=stage.label, reasons=list(chosen.skipped))
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

    def _remember_names(self, catalogue: ListCatalogue) -> None:
        self._list_names.update({key: found.name for key, found in catalogue.lists.items()})

    def list_names(self, stage: Stage) -> dict[str, str]:
        """The names a shared message's To: gives its list; read now only if not yet known."""
        if self.config.max_recipients == 1 or stage.kind not in BATCHED_KINDS:
            return {}
        if not self._list_names:
            # A restart, recipients fixed by another run: a list that cannot be read
            # now is named by its key (outgoing._name), which is only cosmetic.
            with contextlib.suppress(EmbargoBotError, OSError):
                self._remember_names(load_lists(self.config.recipients_dir))
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
            self._prepared[stage.id] = (
                pack.version,
                pack.lift_seq,
                self.builder.build(pack, stage),
            )
        except EmbargoBotError as exc:
            log.warning("pack %s: could not prepare the live email ahead: %s", pack.id, exc)
            return
        sessions = [RelaySession(self.config.relay) for _ in range(self.config.connections)]
        await asyncio.gather(*(session.open() for session in sessions))
        self.close_warm(stage.id)
        self._warm[stage.id] = sessions
        log.info("pack %s: live email ready, %d connection(s) open", pack.id, len(sessions))

    def take_prepared(self, pack: Pack, stage: Stage) -> BuiltMessage | None:
        prepared = self._prepared.pop(stage.id, None)
        if prepared is None or prepared[:2] != (pack.version, pack.lift_seq):
            return None  # amended or moved since: build it afresh
        return prepared[2]

    def take_warm(self, stage_id: int) -> list[RelaySession]:
        return self._warm.pop(stage_id, [])

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
            return
        with self.store.transaction():
            if not self.store.claim_stage(stage.id, self.owner, now, now + self.config.lease):
                return
            self.audit("stage started", pack.id, stage=stage.label, stage_id=stage.id)
        # Re-read after the claim: the pack may have changed while we decided.
        pack, stage = self.store.get_pack(pack.id), self.store.stage(stage.id)
        session = StageSession(self.context, pack, stage, stop)
        try:
            self.fix_recipients(pack, stage)
            built = self.take_prepared(pack, stage) or self.builder.build(pack, stage)
        except EmbargoBotError as exc:
            session.fail(str(exc))
            return
        await session.send(built, self.take_warm(stage.id), self.list_names(stage))
