"""Who each stage goes to: pure functions over the lists and the delivery records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from embargo_bot.domain.errors import ListError
from embargo_bot.domain.packs import Holder, Pack, Stage, StageKind
from embargo_bot.lists.catalogue import ListCatalogue, unique_recipients, usable_lists
from embargo_bot.lists.parse import Recipient


@dataclass(frozen=True)
class Audience:
    recipients: list[Recipient]
    # Lists left out because they became invalid, or no longer cleared for the
    # pack's marking, since it was queued: the stage goes to the rest.
    skipped: tuple[str, ...] = ()
    # The keys of those lists: a notice wave holds them back until they are valid.
    held_keys: tuple[str, ...] = ()


def audience(
    pack: Pack,
    stage: Stage,
    *,
    catalogue: ListCatalogue,
    holders: Sequence[Holder],
    earlier_waves: set[str],
) -> Audience:
    """The recipients a stage is fixed with when it starts.

    ``earlier_waves`` holds the (casefolded) addresses given an earlier notice
    wave, so an address on several waves' lists gets the notice once. Lists
    are checked again here, not only at queue: an admin may have edited one.
    """
    if stage.kind in (StageKind.NOTICE, StageKind.LIVE):
        keys = stage.list_keys if stage.kind is StageKind.NOTICE else pack.list_keys
        lists, skipped = usable_lists(catalogue, keys, pack.classification)
        if not lists and stage.kind is StageKind.LIVE:
            raise ListError("none of the stage's recipient lists can be used:", skipped)
        everyone = unique_recipients(lists)
        if stage.kind is StageKind.LIVE:
            return Audience(list(everyone), skipped)  # the live link goes to everyone named
        usable = {recipient_list.key for recipient_list in lists}
        held = tuple(key for key in dict.fromkeys(keys) if key not in usable)
        fresh = [r for r in everyone if r.email.casefold() not in earlier_waves]
        return Audience(fresh, skipped, held)
    return Audience(_follow_up_audience(pack, stage, catalogue=catalogue, holders=holders))


def _follow_up_audience(
    pack: Pack, stage: Stage, *, catalogue: ListCatalogue, holders: Sequence[Holder]
) -> list[Recipient]:
    if stage.kind is StageKind.CHANGED:
        base = stage.base_lift_seq or 0
        told = [h for h in holders if h.lift_seq <= base and h.lift_seq < pack.lift_seq]
        return [_as_recipient(h) for h in told]
    if stage.kind is StageKind.UPDATED:
        base = stage.base_version or 0
        behind = [h for h in holders if h.version <= base and h.version < pack.version]
        return [_as_recipient(h) for h in behind]
    if stage.kind is StageKind.WITHDRAWN:
        return [_as_recipient(h) for h in holders]
    if stage.kind in (StageKind.REPORT, StageKind.ALERT):
        return [Recipient(email=pack.contact, name=None, list_key="contact")]
    return [test_recipient(pack, stage.test_address or "", catalogue)]


def test_recipient(pack: Pack, address: str, catalogue: ListCatalogue) -> Recipient:
    """A test send may go only to an address on a valid list cleared for the pack's marking."""
    wanted = address.casefold()
    for recipient_list in catalogue.lists.values():
        if not recipient_list.max_classification.admits(pack.classification):
            continue
        for recipient in recipient_list.recipients:
            if recipient.email.casefold() == wanted:
                return recipient
    raise ListError(
        f"{address} is not on any valid list cleared to {pack.classification}: a test "
        "send goes only to a listed address (an admin can add a list of checkers)"
    )


def _as_recipient(holder: Holder) -> Recipient:
    return Recipient(email=holder.email, name=holder.name, list_key=holder.list_key)
