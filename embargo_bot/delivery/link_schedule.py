"""When to check the pack's link: pure functions of the lift, the last check and `now`.

Two watches (issue 12):
- the early watch, from 10 minutes before the lift, at least every 30 s, alerting the
  contact once if the page is already live; it never holds up or brings forward anything;
- the wait after the lift, while the page is not live: at least every 2 s for the first
  2 minutes, then at least every 15 s, until EMBARGO_BOT_LINK_WAIT (30 minutes) has passed.

"At least every": the next check is due that long after the previous one *started*; a check
that ran long (a timeout) makes the next one due at once. A check is never due before `now`,
so a service that was down catches up with one check, not a burst.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_LINK_WAIT = timedelta(minutes=30)


@dataclass(frozen=True)
class LinkWatchRules:
    wait: timedelta = DEFAULT_LINK_WAIT
    fast_every: timedelta = timedelta(seconds=2)
    fast_for: timedelta = timedelta(minutes=2)
    slow_every: timedelta = timedelta(seconds=15)
    early_from: timedelta = timedelta(minutes=10)
    early_every: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        for name in ("wait", "fast_every", "slow_every", "early_every"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be longer than zero")


@dataclass(frozen=True)
class WaitRanOut:
    """The page was still not live when the wait ended: alert, and hold for `release`."""

    since: datetime


class WaitAlert(StrEnum):
    """The alerts to the pack's contact while the live stage waits (X-Embargo-Stage: alert)."""

    NOT_LIVE = "not-live"
    RAN_OUT = "wait-ran-out"


def _aware(**moments: datetime | None) -> None:
    for name, moment in moments.items():
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"naive datetime given as {name}")


def wait_ends_at(lift_at: datetime, rules: LinkWatchRules = LinkWatchRules()) -> datetime:
    return lift_at + rules.wait


def interval_after(
    lift_at: datetime, checked_at: datetime, rules: LinkWatchRules = LinkWatchRules()
) -> timedelta:
    """The longest gap allowed after a check that started at `checked_at`."""
    return rules.fast_every if checked_at - lift_at < rules.fast_for else rules.slow_every


def next_live_check(
    *,
    lift_at: datetime,
    last_checked_at: datetime | None,
    now: datetime,
    rules: LinkWatchRules = LinkWatchRules(),
) -> datetime | WaitRanOut:
    """When to check next while the live stage waits for its page, or that the wait ran out.

    `last_checked_at`: when the latest check since the lift started (None: none yet, e.g.
    at the lift or after a restart). The last check falls at the end of the wait, not after.
    """
    _aware(lift_at=lift_at, last_checked_at=last_checked_at, now=now)
    ends = wait_ends_at(lift_at, rules)
    if last_checked_at is not None and last_checked_at >= ends:
        return WaitRanOut(since=ends)
    if last_checked_at is None or last_checked_at < lift_at:
        due = lift_at
    else:
        due = min(last_checked_at + interval_after(lift_at, last_checked_at, rules), ends)
    return max(due, now)


def early_watch_starts_at(lift_at: datetime, rules: LinkWatchRules = LinkWatchRules()) -> datetime:
    return lift_at - rules.early_from


def next_early_check(
    *,
    lift_at: datetime,
    last_checked_at: datetime | None,
    alerted: bool,
    now: datetime,
    rules: LinkWatchRules = LinkWatchRules(),
) -> datetime | None:
    """When to look for the page before the lift; None when no early check remains.

    None once the contact was alerted (once is enough), and for any moment at or after the
    lift: the check at the lift belongs to the live stage.
    """
    _aware(lift_at=lift_at, last_checked_at=last_checked_at, now=now)
    starts = early_watch_starts_at(lift_at, rules)
    if alerted or now >= lift_at:
        return None
    if last_checked_at is None or last_checked_at < starts:
        due = starts
    else:
        due = last_checked_at + rules.early_every
    due = max(due, now)
    return due if due < lift_at else None


def early_alert_due(*, live: bool, checked_at: datetime, lift_at: datetime, alerted: bool) -> bool:
    """Whether an early check's result warrants the one alert that the page may be out."""
    _aware(checked_at=checked_at, lift_at=lift_at)
    return live and not alerted and checked_at < lift_at


def wait_alert_due(
    *, live: bool, ran_out: bool, not_live_sent: bool, ran_out_sent: bool
) -> WaitAlert | None:
    """Which alert the contact is owed after a check since the lift, if any.

    The first failed check alerts at once; the end of the wait alerts again. A page that
    comes up needs no alert: the partners' live email is the news.
    """
    if live:
        return None
    if ran_out:
        return None if ran_out_sent else WaitAlert.RAN_OUT
    return None if not_live_sent else WaitAlert.NOT_LIVE
