"""Rules every change to a queued pack obeys, whichever command makes it."""

from __future__ import annotations

from embargo_bot.domain.errors import InputError
from embargo_bot.domain.packs import Pack, PackState, StageKind, StageState
from embargo_bot.store import Store


def require_not_yet_live(store: Store, pack: Pack, what: str) -> None:
    """Refuse a change to a pack that is withdrawn, finished, or already going live."""
    if pack.state is not PackState.ACTIVE:
        raise InputError(f"pack {pack.id} is {pack.state}, so it cannot be {what}")
    live = store.stage_of(pack.id, StageKind.LIVE)
    if live.state is not StageState.SCHEDULED:
        raise InputError(
            f"pack {pack.id}'s live email is {live.state}: it is public, so it cannot be {what}"
        )
