"""When a stage may go: the embargo rules as plain functions of ``now``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from embargo_bot.domain.packs import Pack, PackState, Stage, StageKind, StageState


class Action(StrEnum):
    SEND = "send"
    WAIT = "wait"  # not yet: not due by our clock, or not cleared
    SKIP = "skip"
    IGNORE = "ignore"  # nothing to do: withdrawn, finished, or someone else has it


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""


def decide(pack: Pack, stage: Stage, now: datetime) -> Decision:
    withdrawal = stage.kind is StageKind.WITHDRAWN and pack.state is PackState.CANCELLED
    # Mail to the contact goes whatever the pack's state, as the claim allows: a
    # partner's bounce may come back after the pack is done or withdrawn.
    to_contact = stage.kind in (StageKind.REPORT, StageKind.ALERT)
    if pack.state is not PackState.ACTIVE and not (withdrawal or to_contact):
        return Decision(Action.IGNORE, f"pack is {pack.state}")
    if stage.state is not StageState.SCHEDULED:
        return Decision(Action.IGNORE, f"stage is {stage.state}")
    if pack.awaiting_clearance and stage.kind is not StageKind.TEST:
        return Decision(Action.WAIT, "awaiting clearance")
    if now < stage.due_at:
        return Decision(Action.WAIT, "not due yet")
    if stage.kind is StageKind.NOTICE and now >= pack.lift_at:
        return Decision(
            Action.SKIP, "the lift passed before the notice could be sent; the live email follows"
        )
    if not may_send(stage.kind, pack, now):
        return Decision(Action.WAIT, "the embargo has not lifted")
    return Decision(Action.SEND)


def may_send(kind: StageKind, pack: Pack, now: datetime) -> bool:
    """The last gate before each message reaches the relay: no live link before the lift."""
    if kind is StageKind.LIVE:
        return now >= pack.lift_at
    return True


def message_date(kind: StageKind, pack: Pack, fixed_at: datetime) -> datetime:
    """The ``Date:`` a recipient's message carries: when its recipients were fixed.

    The live email is made ready a few seconds ahead, so that moment can fall
    before the lift; a "now live" email dated before the embargo lifted reads
    as a leak. It is dated the lift instead. Both are stored, so every retry
    of a message carries the same Date, byte for byte.
    """
    if kind is not StageKind.LIVE:
        return fixed_at
    # ``Date:`` has whole seconds and is read truncated: round the lift up, not down.
    lift = pack.lift_at
    if lift.microsecond:
        lift = lift.replace(microsecond=0) + timedelta(seconds=1)
    return max(fixed_at, lift)
