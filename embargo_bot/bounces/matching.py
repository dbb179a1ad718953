"""Which delivery a delivery report is about, or none: never a guess.

Three pieces of evidence, strongest first (issue 13):

1. the VERP token in the address the report was sent to, or the same token
   returned as the RFC 3461 envelope id (ENVID): names one delivery;
2. the original Message-ID in the returned message: embargo-bot writes one
   message per recipient, so it names one delivery too;
3. the recipient together with the returned ``X-Embargo-Pack`` (and
   ``X-Embargo-Stage`` when present): one delivery or none.

Stronger evidence, once present, decides: a token or Message-ID the store does
not know means a message the store never sent, and is not rescued by weaker
evidence. Evidence that contradicts itself (a token for one pack, a returned
pack header naming another) matches nothing. A recipient address without a
pack header matches nothing, since that partner may be on many packs.

Only ``failed`` and ``delayed`` recipients are matched; ``delivered``,
``relayed`` and ``expanded`` change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from embargo_bot.bounces.dsn import Action, DeliveryReport, RecipientStatus
from embargo_bot.bounces.verp import is_token, token_from_addresses


@dataclass(frozen=True)
class DeliveryRef:
    """What matching needs to know of one delivery in the store."""

    delivery_id: int
    pack: str
    stage: str  # the StageKind value, as in X-Embargo-Stage
    recipient: str
    stage_id: int = 0  # with recipient, the store's key of the delivery


class DeliveryLookup(Protocol):
    """The store's side; each method is one indexed query."""

    def by_verp_token(self, token: str) -> DeliveryRef | None: ...

    def by_message_id(self, message_id: str) -> Sequence[DeliveryRef]:
        """Deliveries sent with this Message-ID, given as ``<id@domain>``."""
        ...

    def by_recipient(self, recipient: str, pack: str) -> Sequence[DeliveryRef]:
        """Deliveries of this pack (any stage) to this address, compared case-insensitively."""
        ...


class Via(StrEnum):
    VERP_TOKEN = "verp-token"  # noqa: S105 - a name, not a secret
    MESSAGE_ID = "message-id"
    RECIPIENT_AND_PACK = "recipient-and-pack"


@dataclass(frozen=True)
class Matched:
    delivery: DeliveryRef
    status: RecipientStatus  # failed if any block for this delivery failed, else delayed
    via: Via


@dataclass(frozen=True)
class Unmatched:
    status: RecipientStatus
    reason: str


Decision = Matched | Unmatched
_MATCHED_ACTIONS = (Action.FAILED, Action.DELAYED)


def match_report(
    report: DeliveryReport, lookup: DeliveryLookup, *, return_path: str | None
) -> tuple[Decision, ...]:
    """One decision per delivery the report is about, plus one per block that matched nothing.

    ``return_path`` is the VERP base (``EMBARGO_BOT_RETURN_PATH``) when VERP is
    on, else None: tokens are then not looked for.
    """
    blocks = [b for b in report.recipients if b.action in _MATCHED_ACTIONS]
    if not blocks:
        return ()
    token = token_from_addresses(report.envelope_recipients, return_path) if return_path else None
    if token is None and report.envelope_id is not None and is_token(report.envelope_id.lower()):
        token = report.envelope_id.lower()
    if token is not None:
        found = lookup.by_verp_token(token)
        if found is None:
            return _none(blocks, "its VERP token names no delivery in the store")
        return _whole_report(report, blocks, found, Via.VERP_TOKEN)
    message_id = normalise_message_id(report.original.message_id)
    if message_id is not None:
        return _by_message_id(report, blocks, lookup.by_message_id(message_id))
    if report.original.pack is None:
        return _none(blocks, "no VERP token, Message-ID or X-Embargo-Pack to match it by")
    return _collapse([_by_recipient(report, block, lookup) for block in blocks])


def normalise_message_id(value: str | None) -> str | None:
    """``<id@domain>``, as compose writes it; None for nothing usable."""
    if not value:
        return None
    text = value.strip()
    if not (text.startswith("<") and text.endswith(">")):
        text = f"<{text.strip('<>')}>"
    return text if len(text) > 2 and " " not in text else None


def same_address(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _by_message_id(
    report: DeliveryReport, blocks: list[RecipientStatus], candidates: Sequence[DeliveryRef]
) -> tuple[Decision, ...]:
    if not candidates:
        return _none(blocks, "its Message-ID is not one the store sent")
    if len(candidates) == 1:
        # One message per recipient: the Message-ID alone names the delivery,
        # even when the partner's server forwarded it to another address.
        return _whole_report(report, blocks, candidates[0], Via.MESSAGE_ID)
    decisions: list[Decision] = []
    for block in blocks:
        named = [c for c in candidates if _names(block, c.recipient)]
        if len(named) == 1:
            decisions.append(_checked(report, block, named[0], Via.MESSAGE_ID))
        else:
            decisions.append(
                Unmatched(block, "its Message-ID was sent to several recipients, not this one")
            )
    return _collapse(decisions)


def _by_recipient(
    report: DeliveryReport, block: RecipientStatus, lookup: DeliveryLookup
) -> Decision:
    pack = report.original.pack
    assert pack is not None
    stage = report.original.stage
    candidates = [
        c
        for c in lookup.by_recipient(block.final_recipient, pack)
        if same_address(c.recipient, block.final_recipient)
        and c.pack == pack
        and (stage is None or c.stage == stage)
    ]
    if len(candidates) == 1:
        return Matched(candidates[0], block, Via.RECIPIENT_AND_PACK)
    if not candidates:
        return Unmatched(block, f"no delivery of pack {pack} to {block.final_recipient}")
    return Unmatched(
        block, f"{block.final_recipient} had several deliveries of pack {pack} and no stage given"
    )


def _whole_report(
    report: DeliveryReport,
    blocks: list[RecipientStatus],
    delivery: DeliveryRef,
    via: Via,
) -> tuple[Decision, ...]:
    return _collapse([_checked(report, block, delivery, via) for block in blocks])


def _checked(
    report: DeliveryReport, block: RecipientStatus, delivery: DeliveryRef, via: Via
) -> Decision:
    original = report.original
    if original.pack is not None and original.pack != delivery.pack:
        return Unmatched(block, f"names pack {delivery.pack} but returns pack {original.pack}")
    if original.stage is not None and original.stage != delivery.stage:
        return Unmatched(block, f"names stage {delivery.stage} but returns stage {original.stage}")
    return Matched(delivery, block, via)


def _names(block: RecipientStatus, recipient: str) -> bool:
    return same_address(block.final_recipient, recipient) or (
        block.original_recipient is not None and same_address(block.original_recipient, recipient)
    )


def _collapse(decisions: list[Decision]) -> tuple[Decision, ...]:
    """One Matched per delivery, the failure winning over a delay; every Unmatched kept."""
    best: dict[int, Matched] = {}
    rest: list[Decision] = []
    for decision in decisions:
        if isinstance(decision, Unmatched):
            rest.append(decision)
            continue
        key = decision.delivery.delivery_id
        held = best.get(key)
        if held is None or (
            held.status.action is not Action.FAILED and decision.status.action is Action.FAILED
        ):
            best[key] = decision
    return (*best.values(), *rest)


def _none(blocks: list[RecipientStatus], reason: str) -> tuple[Decision, ...]:
    return tuple(Unmatched(block, reason) for block in blocks)
