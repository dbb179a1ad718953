"""The link-check timing rules, as tables over an injected `now`: no sleeps, no loop."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from embargo_bot.delivery.link_schedule import (
    LinkWatchRules,
    WaitAlert,
    WaitRanOut,
    early_alert_due,
    next_early_check,
    next_live_check,
    wait_alert_due,
)

LIFT = datetime(2022, 2, 23, 11, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A moment relative to the lift."""
    return LIFT + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [
        # First check: at the lift, or at once if the lift has passed (restart, lag).
        (None, at(0), at(0)),
        (None, at(-0.5), at(0)),
        (None, at(7), at(7)),
        (at(-30), at(0), at(0)),  # an early-watch check does not count
        # The first 2 minutes: every 2 s, measured from when the last check started.
        (at(0), at(0.1), at(2)),
        (at(2), at(2.3), at(4)),
        (at(119), at(119.2), at(121)),
        # A check that took 5 s (timed out): the next is due at once.
        (at(10), at(15), at(15)),
        # After 2 minutes: every 15 s.
        (at(120), at(120.1), at(135)),
        (at(600), at(601), at(615)),
        # The last check falls exactly at the end of the wait.
        (at(1795), at(1796), at(1800)),
        # Down across the end of the wait: one look at once, then it ran out.
        (at(300), at(2700), at(2700)),
    ],
)
def test_next_live_check(last: datetime | None, now: datetime, due: datetime) -> None:
    assert next_live_check(lift_at=LIFT, last_checked_at=last, now=now) == due


@pytest.mark.parametrize("last", [at(1800), at(1800.4), at(2700)])
def test_the_wait_runs_out_after_the_check_at_its_end(last: datetime) -> None:
    assert next_live_check(lift_at=LIFT, last_checked_at=last, now=last) == WaitRanOut(
        since=at(1800)
    )


def test_the_wait_is_a_setting() -> None:
    rules = LinkWatchRules(wait=timedelta(minutes=5))
    assert next_live_check(lift_at=LIFT, last_checked_at=at(295), now=at(296), rules=rules) == at(
        300
    )
    assert next_live_check(
        lift_at=LIFT, last_checked_at=at(300), now=at(300), rules=rules
    ) == WaitRanOut(since=at(300))


def test_a_whole_wait_keeps_every_gap_within_the_rules() -> None:
    checks: list[datetime] = []
    now = at(0)
    while True:
        step = next_live_check(
            lift_at=LIFT, last_checked_at=checks[-1] if checks else None, now=now
        )
        if isinstance(step, WaitRanOut):
            break
        checks.append(step)
        # Each check takes 0.3 s.
        now = step + timedelta(seconds=0.3)
    gaps = [(b - LIFT, b - a) for a, b in itertools.pairwise(checks)]
    assert checks[0] == LIFT and checks[-1] == at(1800)
    assert all(gap <= timedelta(seconds=2) for since, gap in gaps if since <= timedelta(minutes=2))
    assert all(gap <= timedelta(seconds=15) for _, gap in gaps)
    assert len(checks) == 60 + 112 + 1


@pytest.mark.parametrize(
    ("last", "alerted", "now", "due"),
    [
        # Days ahead: the first early check is 10 minutes before the lift.
        (None, False, at(-86_400), at(-600)),
        (None, False, at(-600), at(-600)),
        (None, False, at(-42), at(-42)),
        # Every 30 s after that.
        (at(-600), False, at(-599), at(-570)),
        (at(-45), False, at(-44), at(-15)),
        # None falls at or after the lift: the lift's own check takes over.
        (at(-30), False, at(-29), None),
        (at(-10), False, at(-9), None),
        (None, False, at(0), None),
        (None, False, at(5), None),
        # Alerted once: no more early checks.
        (at(-300), True, at(-299), None),
    ],
)
def test_next_early_check(
    last: datetime | None, alerted: bool, now: datetime, due: datetime | None
) -> None:
    assert next_early_check(lift_at=LIFT, last_checked_at=last, alerted=alerted, now=now) == due


@pytest.mark.parametrize(
    ("live", "checked", "alerted", "due"),
    [
        (True, at(-120), False, True),
        (True, at(-120), True, False),
        (False, at(-120), False, False),
        (True, at(0), False, False),  # at the lift a live page is simply the lift
    ],
)
def test_early_alert_due(live: bool, checked: datetime, alerted: bool, due: bool) -> None:
    assert early_alert_due(live=live, checked_at=checked, lift_at=LIFT, alerted=alerted) is due


@pytest.mark.parametrize(
    ("live", "ran_out", "not_live_sent", "ran_out_sent", "alert"),
    [
        (False, False, False, False, WaitAlert.NOT_LIVE),
        (False, False, True, False, None),
        (False, True, True, False, WaitAlert.RAN_OUT),
        (False, True, False, False, WaitAlert.RAN_OUT),
        (False, True, True, True, None),
        (True, False, False, False, None),
        (True, False, True, False, None),
    ],
)
def test_wait_alert_due(
    live: bool, ran_out: bool, not_live_sent: bool, ran_out_sent: bool, alert: WaitAlert | None
) -> None:
    assert (
        wait_alert_due(
            live=live, ran_out=ran_out, not_live_sent=not_live_sent, ran_out_sent=ran_out_sent
        )
        is alert
    )


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime given as now"):
        next_live_check(lift_at=LIFT, last_checked_at=None, now=datetime(2022, 2, 23, 11))  # noqa: DTZ001


def test_rules_refuse_a_zero_interval() -> None:
    with pytest.raises(ValueError, match="fast_every"):
        LinkWatchRules(fast_every=timedelta(0))
