"""At the lift the live email waits for its page: a real HTTPS site and a real relay on loopback.

The site (tests/servers/https_site.py) answers 404 until the test publishes it. The timing
rules are the issue's where a test can afford them (2 s checks at first) and scaled down
where it cannot (the 10-minute early watch, the 30-minute wait).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import at, deliveries_of, parse, queue, stages_closed, wait_until
from servers.https_site import PublicationSite

from embargo_bot.app import App, open_app
from embargo_bot.delivery.link_schedule import LinkWatchRules
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.link_watch import Watch
from embargo_bot.domain.packs import DeliveryState, StageKind, StageState
from embargo_bot.officials.release import release_pack
from embargo_bot.settings import Settings

PARTNERS = 3  # the live email's recipients on lists alpha and beta (conftest)


def of_stage(received: list[Received], kind: StageKind) -> list[Received]:
    return [item for item in received if parse(item)["X-Embargo-Stage"] == kind.value]


def body_text(item: Received) -> str:
    message = parse(item)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


@asynccontextmanager
async def service(app: App, rules: LinkWatchRules | None = None) -> AsyncIterator[None]:
    """The real service with these link-check timings, for the length of the block."""
    running = app.service(rules)
    task = asyncio.create_task(running.run())
    try:
        yield
    finally:
        running.stop()
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
def checked_app(
    relay: StandInRelay, make_settings: Callable[..., Settings], publication_site: PublicationSite
) -> Callable[..., Any]:
    """An app whose link check trusts the site's test CA (EMBARGO_BOT_LINK_CA_FILE)."""

    def build(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "link_check": True,
            "link_ca_file": publication_site.ca_file,
            "link_wait": "20s",
        }
        values.update(overrides)
        return open_app(make_settings(relay, **values))

    return build


def lift_in(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


async def test_no_live_email_until_the_page_answers_then_everyone_within_3_s(
    checked_app: Callable[..., Any],
    relay: StandInRelay,
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    lift = lift_in(3)
    with checked_app() as app:
        pack = queue(app, make_request(lift=at(lift), url=publication_site.url))
        async with service(app):
            await wait_until(lambda: bool(of_stage(relay.received, StageKind.ALERT)), within=10)
            alert = of_stage(relay.received, StageKind.ALERT)[0]
            assert alert.received_at < lift + timedelta(seconds=1.5), "alerted at once"
            assert not of_stage(relay.received, StageKind.LIVE), "no live email before the page"
            await wait_until(lambda: datetime.now(UTC) > lift + timedelta(seconds=2.5))
            assert not of_stage(relay.received, StageKind.LIVE)
            published = datetime.now(UTC)
            publication_site.publish(published)
            await wait_until(
                lambda: len(of_stage(relay.received, StageKind.LIVE)) == PARTNERS, within=10
            )
            await wait_until(lambda: stages_closed(app, pack.id), within=10)
        lives = of_stage(relay.received, StageKind.LIVE)
        first = min(item.received_at for item in lives)
        assert published <= first < published + timedelta(seconds=3), first - published
        alerts = of_stage(relay.received, StageKind.ALERT)
        assert len(alerts) == 1, "one alert while waiting; the live email itself is the news"
        assert list(alerts[0].rcpt_tos) == ["ocu@example.org"], "the pack's contact only"
        words = body_text(alerts[0])
        assert "HTTP 404 at" in words and "GMT" in words
        assert "NOT been sent the live link" in words
        assert "as soon as it answers" in words
        assert publication_site.url not in words, "no live link before it is live"
        watch = app.store.link_watch(pack.id, Watch.LIVE)
        assert watch is not None and watch.live and watch.seen == "HTTP 200"
        requests = [r for r in publication_site.seen() if r.at >= lift]
        gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
        assert all(gap <= timedelta(seconds=2.5) for gap in gaps), gaps


async def test_a_page_live_at_the_lift_costs_partners_nothing(
    checked_app: Callable[..., Any],
    relay: StandInRelay,
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    lift = lift_in(10)  # past the 5 s prepare-ahead, with time to queue on a busy machine
    # Up at the lift, not before: a page out early would rightly alert the contact.
    publication_site.publish(lift)
    with checked_app() as app:
        pack = queue(app, make_request(lift=at(lift), url=publication_site.url))
        async with service(app):
            await wait_until(lambda: stages_closed(app, pack.id), within=20)
        lives = of_stage(relay.received, StageKind.LIVE)
        assert len(lives) == PARTNERS
        first = min(item.received_at for item in lives)
        # The bound is 100 ms (typically 20-60 ms here); on a shared test machine,
        # allow a loaded moment as test_service.py does for the live email without a check.
        assert lift <= first < lift + timedelta(milliseconds=300), first - lift
        print(f"first live email accepted {(first - lift).total_seconds() * 1000:.0f} ms after")
        checks = [r for r in publication_site.seen() if r.at >= lift]
        assert checks and checks[0].at < first, "the page was checked at the lift, before sending"
        before = [r for r in publication_site.seen() if lift - timedelta(seconds=2) <= r.at < lift]
        assert before, "checked once just before the lift, so the lift's check is on a warm client"
        assert not of_stage(relay.received, StageKind.ALERT), "no alert for a page that is up"


async def test_the_page_out_early_alerts_the_contact_once_and_changes_nothing_else(
    checked_app: Callable[..., Any],
    relay: StandInRelay,
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    # The 10 minutes and 30 s, scaled: from 6 s before the lift, every 0.5 s.
    rules = LinkWatchRules(early_from=timedelta(seconds=6), early_every=timedelta(seconds=0.5))
    publication_site.publish(datetime.now(UTC))
    lift = lift_in(9)
    with checked_app() as app:
        pack = queue(app, make_request(lift=at(lift), url=publication_site.url))
        async with service(app, rules):
            await wait_until(lambda: bool(of_stage(relay.received, StageKind.ALERT)), within=10)
            await wait_until(lambda: stages_closed(app, pack.id), within=20)
        alerts = of_stage(relay.received, StageKind.ALERT)
        assert len(alerts) == 1, "alerted once, not at every check"
        assert lift - timedelta(seconds=6.5) <= alerts[0].received_at < lift
        words = body_text(alerts[0])
        assert "may be public early" in words and "HTTP 200 at" in words
        assert publication_site.url not in words
        lives = of_stage(relay.received, StageKind.LIVE)
        assert len(lives) == PARTNERS
        assert min(item.received_at for item in lives) >= lift, "still not before the lift"
        early = [r for r in publication_site.seen() if r.at < lift - timedelta(seconds=0.2)]
        assert early and early[0].at >= lift - timedelta(seconds=6.5), "from early_from only"
        watch = app.store.link_watch(pack.id, Watch.EARLY)
        assert watch is not None and watch.alerts == ("early",)


async def test_the_page_not_out_early_is_checked_every_half_minute_scaled_without_alert(
    checked_app: Callable[..., Any],
    relay: StandInRelay,
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    rules = LinkWatchRules(early_from=timedelta(seconds=6), early_every=timedelta(seconds=0.5))
    lift = lift_in(10)
    with checked_app() as app:
        pack = queue(app, make_request(lift=at(lift), url=publication_site.url, lists="alpha"))
        async with service(app, rules):
            await wait_until(lambda: datetime.now(UTC) > lift - timedelta(seconds=1.5), within=35)
        assert not of_stage(relay.received, StageKind.ALERT)
        seen = publication_site.seen()
        assert seen and all(r.at >= lift - timedelta(seconds=6.5) for r in seen)
        gaps = [b.at - a.at for a, b in itertools.pairwise(seen)]
        assert all(gap < timedelta(seconds=1) for gap in gaps), gaps
        watch = app.store.link_watch(pack.id, Watch.EARLY)
        assert watch is not None and not watch.live and watch.seen == "HTTP 404"


async def test_the_wait_runs_out_alerts_again_holds_across_a_restart_then_release_sends(
    checked_app: Callable[..., Any],
    relay: StandInRelay,
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    rules = LinkWatchRules(wait=timedelta(seconds=3), fast_every=timedelta(seconds=0.5))
    lift = lift_in(3)
    with checked_app(link_wait="3s") as app:
        pack = queue(app, make_request(lift=at(lift), url=publication_site.url))
        with pytest.raises(InputError, match="before the lift"):
            release_pack(app, pack.id, by="duty-officer")
        async with service(app, rules):
            await wait_until(lambda: len(of_stage(relay.received, StageKind.ALERT)) == 2, within=15)
            second = of_stage(relay.received, StageKind.ALERT)[1]
            assert second.received_at >= lift + timedelta(seconds=3), "when the wait ran out"
            assert "still not up" in parse(second)["Subject"]
            assert "embargo-bot release" in body_text(second)
            await asyncio.sleep(1.5)
            assert app.store.stage_of(pack.id, StageKind.LIVE).state is StageState.SENDING
        # The next start resumes the hold: no third alert, still no live email.
        async with service(app, rules):
            await asyncio.sleep(2.0)
            assert len(of_stage(relay.received, StageKind.ALERT)) == 2
            assert not of_stage(relay.received, StageKind.LIVE)
            released = time.monotonic()
            release_pack(app, pack.id, by="duty-officer")
            await wait_until(
                lambda: len(of_stage(relay.received, StageKind.LIVE)) == PARTNERS, within=10
            )
            assert time.monotonic() - released < 4, "a few seconds after `release`"
            await wait_until(lambda: stages_closed(app, pack.id), within=10)
        entries = [e for e in app.store.audit_entries() if e.action == "released"]
        assert len(entries) == 1 and entries[0].actor == "duty-officer"
        with pytest.raises(InputError, match="already live"):
            release_pack(app, pack.id, by="duty-officer")
        assert len(deliveries_of(app, pack.id, StageKind.LIVE, DeliveryState.SENT)) == PARTNERS


async def test_link_check_off_in_settings_or_for_the_pack_sends_without_checking(
    checked_app: Callable[..., Any],
    relay: StandInRelay,
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    lift = lift_in(3)
    with checked_app(link_check=False) as app:
        off = queue(app, make_request(lift=at(lift), url=publication_site.url, lists="alpha"))
        async with service(app):
            await wait_until(lambda: stages_closed(app, off.id), within=15)
    with checked_app() as app:
        lift = lift_in(3)
        one = queue(
            app,
            make_request(lift=at(lift), url=publication_site.url, lists="beta", link_check=False),
        )
        assert not app.store.get_pack(one.id).link_check
        async with service(app):
            await wait_until(lambda: stages_closed(app, one.id), within=15)
    assert len(of_stage(relay.received, StageKind.LIVE)) == 4  # alpha's 2, beta's 2
    assert not of_stage(relay.received, StageKind.ALERT)
    assert publication_site.seen() == [], "the page was never requested"


async def test_the_check_trusts_link_ca_file_and_says_when_a_certificate_is_not_trusted(
    checked_app: Callable[..., Any],
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    publication_site.publish(datetime.now(UTC))
    with checked_app() as app:
        pack = queue(app, make_request(url=publication_site.url, expect_text="Published today"))
        gate = app.link_gate("test")
        assert gate is not None
        try:
            result = await gate.check(app.store.get_pack(pack.id))
        finally:
            await gate.aclose()
        assert result.live, result.seen
    with checked_app(link_ca_file=None) as app:
        gate = app.link_gate("test")
        assert gate is not None
        try:
            result = await gate.check(app.store.get_pack(pack.id))
        finally:
            await gate.aclose()
        assert not result.live and result.seen.startswith("certificate not trusted")


async def test_expect_text_must_be_on_the_page(
    checked_app: Callable[..., Any],
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
) -> None:
    publication_site.publish(datetime.now(UTC))
    with checked_app() as app:
        pack = queue(app, make_request(url=publication_site.url, expect_text="Not on the page"))
        gate = app.link_gate("test")
        assert gate is not None
        try:
            result = await gate.check(app.store.get_pack(pack.id))
        finally:
            await gate.aclose()
        assert not result.live and "not contain 'Not on the page'" in result.seen


def test_show_tells_what_the_check_saw_and_when(
    checked_app: Callable[..., Any],
    make_request: Callable[..., Any],
    publication_site: PublicationSite,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    relay: StandInRelay,
    tmp_path: Path,
    lists_dir: Path,
    key: str,
) -> None:
    from embargo_bot.cli.main import main
    from embargo_bot.domain.link_watch import SeenCheck

    with checked_app() as app:
        pack = queue(app, make_request(url=publication_site.url, expect_text="Strategy"))
        checked = datetime(2030, 2, 23, 11, 0, 2, tzinfo=UTC)
        app.store.record_link_check(
            pack.id, Watch.LIVE, SeenCheck(checked, "HTTP 404", 404, False), alert="not-live"
        )
    for name, value in {
        "EMBARGO_BOT_DATABASE": str(tmp_path / "store.db"),
        "EMBARGO_BOT_RECIPIENTS_DIR": str(lists_dir),
        "EMBARGO_BOT_KEY": key,
        "EMBARGO_BOT_FROM": "Organised Crime Unit <ocu@example.org>",
        "EMBARGO_BOT_SMTP_HOST": "127.0.0.1",
        "EMBARGO_BOT_SMTP_SECURITY": "none",
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["show", pack.id, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    link = document["link_check"]
    assert link["enabled"] and link["expect_text"] == "Strategy"
    assert link["watches"] == [
        {
            "watch": "live",
            "checked_at": "2030-02-23T11:00:02.000000Z",
            "seen": "HTTP 404",
            "status": 404,
            "live": False,
            "checks": 1,
            "alerts": ["not-live"],
        }
    ]
    assert main(["show", pack.id]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "HTTP 404 (not live)" in out and "11:00:02" in out
    assert "contains 'Strategy'" in out
