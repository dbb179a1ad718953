"""The two link watches as loops: the timing rules of link_schedule driving a check.

Everything with a side effect is passed in: `check` (a `LinkChecker.check`), `record`
(store the result for `show`, and send the alert it carries, in one step), the clock and
`sleep`. The state that must survive a restart (when the last check started, which alerts
went) is a value the caller loads from the store and passes in, so a resumed service
neither alerts twice nor starts the wait again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from .link_check import LinkCheck
from .link_schedule import (
    LinkWatchRules,
    WaitAlert,
    WaitRanOut,
    early_alert_due,
    next_early_check,
    next_live_check,
    wait_alert_due,
)

Check = Callable[[datetime], Awaitable[LinkCheck]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class WaitState:
    """What the store must keep per live stage while it waits for its page."""

    last_checked_at: datetime | None = None
    not_live_sent: bool = False
    ran_out_sent: bool = False


class WaitEnd(StrEnum):
    LIVE = "live"
    RAN_OUT = "wait-ran-out"
    # An official ran `release PACK`: send without the check.
    RELEASED = "released"


@dataclass(frozen=True)
class WaitResult:
    end: WaitEnd
    last: LinkCheck | None
    state: WaitState


async def wait_until_live(
    *,
    check: Check,
    record: Callable[[LinkCheck, WaitAlert | None], Awaitable[None]],
    lift_at: datetime,
    clock: Callable[[], datetime],
    rules: LinkWatchRules,
    state: WaitState = WaitState(),
    released: Callable[[], bool] = lambda: False,
    sleep: Sleep = asyncio.sleep,
) -> WaitResult:
    """Check from the lift until the page is live or the wait runs out.

    LIVE or RELEASED: send the live stage now. RAN_OUT: the stage holds for `release PACK`.
    `released` is asked before every check (a store read: the CLI writes the release).
    """
    last: LinkCheck | None = None
    while True:
        if released():
            return WaitResult(WaitEnd.RELEASED, last, state)
        step = next_live_check(
            lift_at=lift_at, last_checked_at=state.last_checked_at, now=clock(), rules=rules
        )
        if isinstance(step, WaitRanOut):
            return WaitResult(WaitEnd.RAN_OUT, last, state)
        delay = (step - clock()).total_seconds()
        if delay > 0:
            await sleep(delay)
            if released():
                return WaitResult(WaitEnd.RELEASED, last, state)
        last = await check(clock())
        after = next_live_check(
            lift_at=lift_at, last_checked_at=last.checked_at, now=last.checked_at, rules=rules
        )
        alert = wait_alert_due(
            live=last.live,
            ran_out=isinstance(after, WaitRanOut),
            not_live_sent=state.not_live_sent,
            ran_out_sent=state.ran_out_sent,
        )
        await record(last, alert)
        state = replace(
            state,
            last_checked_at=last.checked_at,
            not_live_sent=state.not_live_sent or alert is WaitAlert.NOT_LIVE,
            ran_out_sent=state.ran_out_sent or alert is WaitAlert.RAN_OUT,
        )
        if last.live:
            return WaitResult(WaitEnd.LIVE, last, state)


async def watch_for_early_publication(
    *,
    check: Check,
    record: Callable[[LinkCheck, bool], Awaitable[None]],
    lift_at: datetime,
    clock: Callable[[], datetime],
    last_checked_at: datetime | None = None,
    alerted: bool = False,
    rules: LinkWatchRules,
    sleep: Sleep = asyncio.sleep,
) -> bool:
    """From 10 minutes before the lift, look for the page; True if the contact was alerted.

    `record(result, alert)` stores the result and, when `alert`, sends the one alert that
    the publication may be out early. Returns at the lift (or once alerted); it never holds
    up or brings forward the live stage, so run it as its own task and cancel it freely.
    """
    while True:
        due = next_early_check(
            lift_at=lift_at,
            last_checked_at=last_checked_at,
            alerted=alerted,
            now=clock(),
            rules=rules,
        )
        if due is None:
            return alerted
        delay = (due - clock()).total_seconds()
        if delay > 0:
            await sleep(delay)
        result = await check(clock())
        if result.checked_at >= lift_at:
            # Slept into the lift: that check is the live stage's business.
            return alerted
        alert = early_alert_due(
            live=result.live, checked_at=result.checked_at, lift_at=lift_at, alerted=alerted
        )
        await record(result, alert)
        last_checked_at = result.checked_at
        alerted = alerted or alert
