"""The link watches as loops, against the real HTTPS site, with the rules scaled down."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

from servers.https_site import PublicationSite

from embargo_bot.delivery.link_check import LinkCheck, LinkChecker
from embargo_bot.delivery.link_schedule import LinkWatchRules, WaitAlert
from embargo_bot.delivery.link_wait import (
    WaitEnd,
    WaitState,
    wait_until_live,
    watch_for_early_publication,
)

# The rules shortened (2 s -> 50 ms, 2 min -> 0.4 s, 15 s -> 0.2 s, 30 min -> 1.2 s,
# 10 min -> 0.6 s, 30 s -> 0.1 s), so each loop runs whole in about a second.
RULES = LinkWatchRules(
    wait=timedelta(seconds=1.2),
    fast_every=timedelta(milliseconds=50),
    fast_for=timedelta(milliseconds=400),
    slow_every=timedelta(milliseconds=200),
    early_from=timedelta(milliseconds=600),
    early_every=timedelta(milliseconds=100),
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[LinkCheck, WaitAlert | bool | None]] = []

    async def __call__(self, result: LinkCheck, alert: WaitAlert | bool | None) -> None:
        self.seen.append((result, alert))

    @property
    def alerts(self) -> list[WaitAlert | bool]:
        return [alert for _, alert in self.seen if alert]


async def test_the_page_coming_up_is_seen_within_one_fast_interval(
    publication_site: PublicationSite,
) -> None:
    lift = utc_now() + timedelta(milliseconds=100)
    page_up = lift + timedelta(milliseconds=500)
    publication_site.live_at = page_up
    record = Recorder()
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await wait_until_live(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            rules=RULES,
        )
    seen_live = utc_now()
    assert result.end is WaitEnd.LIVE
    assert result.last is not None and result.last.live
    # "Every 2 s" is every 50 ms here: the live page is seen well within 0.3 s.
    assert seen_live - page_up < timedelta(milliseconds=300)
    assert record.alerts == [WaitAlert.NOT_LIVE]
    assert record.seen[0][0].seen == "HTTP 404" and record.seen[0][0].checked_at >= lift
    assert result.state.not_live_sent and not result.state.ran_out_sent


async def test_a_page_live_at_the_lift_costs_nothing(publication_site: PublicationSite) -> None:
    publication_site.publish()
    lift = utc_now() + timedelta(milliseconds=100)
    record = Recorder()
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await wait_until_live(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            rules=RULES,
        )
    took = utc_now() - lift
    assert result.end is WaitEnd.LIVE and record.alerts == []
    # The 100 ms from the lift to the first live email accepted; the check takes
    # about 10 ms of it on loopback (a fresh TLS connection each time).
    assert took < timedelta(milliseconds=100), took


async def test_the_wait_runs_out_with_two_alerts(publication_site: PublicationSite) -> None:
    lift = utc_now()
    record = Recorder()
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await wait_until_live(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            rules=RULES,
        )
    assert result.end is WaitEnd.RAN_OUT
    assert record.alerts == [WaitAlert.NOT_LIVE, WaitAlert.RAN_OUT]
    checks = [checked.checked_at for checked, _ in record.seen]
    assert checks[-1] - lift >= RULES.wait
    gaps = [b - a for a, b in itertools.pairwise(checks)]
    assert max(gaps) < RULES.slow_every + timedelta(milliseconds=150)
    assert result.state == WaitState(checks[-1], True, True)


async def test_a_resumed_wait_does_not_alert_again(publication_site: PublicationSite) -> None:
    lift = utc_now() - timedelta(milliseconds=300)
    state = WaitState(last_checked_at=lift, not_live_sent=True)
    record = Recorder()
    publication_site.live_at = utc_now() + timedelta(milliseconds=200)
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await wait_until_live(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            state=state,
            rules=RULES,
        )
    assert result.end is WaitEnd.LIVE
    assert record.alerts == []


async def test_an_early_publication_alerts_once(publication_site: PublicationSite) -> None:
    publication_site.publish()
    lift = utc_now() + timedelta(milliseconds=400)
    record = Recorder()
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        alerted = await watch_for_early_publication(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            rules=RULES,
        )
    assert alerted
    assert record.alerts == [True] and len(record.seen) == 1
    assert utc_now() < lift


async def test_no_early_alert_while_the_page_is_not_up(publication_site: PublicationSite) -> None:
    lift = utc_now() + timedelta(milliseconds=450)
    record = Recorder()
    started = time.monotonic()
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        alerted = await watch_for_early_publication(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            rules=RULES,
        )
    assert not alerted and record.alerts == []
    # Every 100 ms for 450 ms: five checks, or four; one TLS handshake slowed by a loaded
    # machine may cost one more, never the watch itself.
    assert 3 <= len(record.seen) <= 5
    assert all(checked.checked_at < lift for checked, _ in record.seen)
    assert time.monotonic() - started < 1


async def test_a_release_ends_the_wait_without_the_page(publication_site: PublicationSite) -> None:
    lift = utc_now()
    record = Recorder()
    release_at = lift + timedelta(milliseconds=300)
    async with LinkChecker(ca_file=publication_site.ca_file) as checker:
        result = await wait_until_live(
            check=lambda now: checker.check(publication_site.url, now=now),
            record=record,
            lift_at=lift,
            clock=utc_now,
            rules=RULES,
            released=lambda: utc_now() >= release_at,
        )
    assert result.end is WaitEnd.RELEASED
    assert utc_now() - release_at < timedelta(milliseconds=200)
    assert record.alerts == [WaitAlert.NOT_LIVE]
    assert result.last is not None and not result.last.live
