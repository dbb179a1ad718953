"""Who each stage goes to: pure functions over the lists and the delivery records."""

from __future__ import annotations

from collections.abc import Sequence

from embargo_bot.errors import ListError
from embargo_bot.packs import Holder, Pack, Stage, StageKind
from embargo_bot.recipients import ListCatalogue, Recipient, select_lists, unique_recipients


def audience(
    pack: Pack,
    stage: Stage,
    *,
    catalogue: ListCatalogue,
    holders: Sequence[Holder],
    earlier_waves: set[str],
) -> list[Recipient]:
    """The recipients a stage is fixed with when it starts.

    ``earlier_waves`` holds the (casefolded) addresses given an earlier notice
    wave, so an address on several waves' lists gets the notice once.
    """
    if stage.kind is StageKind.NOTICE:
        lists = select_lists(catalogue, stage.list_keys, pack.classification)
        return [r for r in unique_recipients(lists) if r.email.casefold() not in earlier_waves]
    if stage.kind is StageKind.LIVE:
        return list(unique_recipients(select_lists(catalogue, pack.list_keys, pack.classification)))
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
    if stage.kind is StageKind.REPORT:
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
