"""`show`'s part about the link check: what each watch last saw and when, and the alerts."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from embargo_bot.cli.records import Field, Records
from embargo_bot.domain.bounces import is_bounce_alert
from embargo_bot.domain.link_watch import LinkWatch, Watch
from embargo_bot.domain.packs import Pack, Stage, StageKind
from embargo_bot.domain.times import describe_short, to_storage
from embargo_bot.messages.link_alerts import AlertWords
from embargo_bot.officials.status import PackStatus

WATCH_WORDS = {
    Watch.EARLY: "before the lift (is it out early?)",
    Watch.LIVE: "at the lift (the live email waits for it)",
}


def _alerts(status: PackStatus) -> list[Stage]:
    """The link check's alerts; a bounce's alert is about a partner, shown with the stages."""
    return [
        item.stage
        for item in status.stages
        if item.stage.kind is StageKind.ALERT and not is_bounce_alert(item.stage.detail)
    ]


def check_words(pack: Pack) -> str:
    """How the live email is gated, in a line."""
    if not pack.link_check:
        return "off for this pack (--no-link-check): the live email goes at the lift"
    wanted = "answers 200"
    if pack.expect_text is not None:
        wanted += f" and contains {pack.expect_text!r}"
    words = f"the live email goes when the page {wanted}"
    if pack.released_at is not None:
        words += f"; released by {pack.released_by}: it goes without the check"
    return words


def link_json(status: PackStatus) -> dict[str, Any]:
    pack = status.pack
    return {
        "enabled": pack.link_check,
        "expect_text": pack.expect_text,
        "released": None
        if pack.released_at is None
        else {"at": to_storage(pack.released_at), "by": pack.released_by},
        "watches": [_watch_json(watch) for watch in status.link_watches],
        "alerts": [
            {
                "at": to_storage(stage.due_at),
                "headline": AlertWords.from_detail(stage.detail).headline,
                "state": stage.state.value,
            }
            for stage in _alerts(status)
        ],
    }


def _watch_json(watch: LinkWatch) -> dict[str, Any]:
    return {
        "watch": watch.watch.value,
        "checked_at": to_storage(watch.checked_at),
        "seen": watch.seen,
        "status": watch.status,
        "live": watch.live,
        "checks": watch.checks,
        "alerts": list(watch.alerts),
    }


def link_view(status: PackStatus, *, zone: ZoneInfo) -> Records:
    """The latest check per watch, then each alert sent to the contact."""
    table = Records(
        f"Link check: {check_words(status.pack)}",
        [Field("Check"), Field("Latest"), Field("Seen", wraps=True), Field("Checks")],
    )
    for watch in status.link_watches:
        table.add_row(
            WATCH_WORDS[watch.watch],
            describe_short(watch.checked_at, zone),
            watch.seen + (" (live)" if watch.live else " (not live)"),
            str(watch.checks),
        )
    for stage in _alerts(status):
        table.add_row(
            f"alert to {status.pack.contact}",
            describe_short(stage.due_at, zone),
            f"{AlertWords.from_detail(stage.detail).headline} ({stage.state})",
            "",
        )
    return table
