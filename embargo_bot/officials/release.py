"""`release PACK`: send the live email without checking the page, after the lift."""

from __future__ import annotations

from embargo_bot.app import App
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.link_watch import Watch
from embargo_bot.domain.packs import OPEN_STAGE_STATES, Pack, PackState, StageKind
from embargo_bot.domain.times import describe


def release_pack(app: App, pack_id: str, *, by: str) -> Pack:
    """Mark the pack's live email to go without the check; the service sends it at once."""
    pack = app.store.get_pack(pack_id)
    now = app.clock()
    if pack.state is PackState.DONE:
        raise InputError(
            f"pack {pack_id} is already live: its live email has gone, there is nothing to "
            "release; `embargo-bot show` tells how it went"
        )
    if pack.state is not PackState.ACTIVE:
        raise InputError(f"pack {pack_id} is {pack.state}: there is no live email to release")
    if now < pack.lift_at:
        raise InputError(
            f"pack {pack_id}'s embargo lifts at {describe(pack.lift_at, app.settings.zone)}: "
            "nothing can be released before the lift; the live email goes at the lift"
        )
    live = app.store.stage_of(pack_id, StageKind.LIVE)
    summary = app.store.stage_summary(live.id)
    watch = app.store.link_watch(pack_id, Watch.LIVE)
    if (
        live.state not in OPEN_STAGE_STATES
        or summary.sent
        or summary.failed
        or (watch is not None and watch.live)
    ):
        raise InputError(
            f"pack {pack_id} is already live (its live email is {live.state}): there is "
            "nothing to release; `embargo-bot show` tells how it went"
        )
    if pack.released_at is not None:
        raise InputError(
            f"pack {pack_id} was already released by {pack.released_by}: the live email goes "
            "without the check"
        )
    with app.store.transaction():
        if not app.store.release(pack_id, by, now):
            raise InputError(f"pack {pack_id} changed meanwhile; check `embargo-bot show`")
        app.audit("released", pack_id, actor=by, reason="live email sent without the link check")
    return app.store.get_pack(pack_id)
