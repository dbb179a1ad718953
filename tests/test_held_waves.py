"""A list that is invalid at its wave's time: the wave holds it, alerts, and sends when fixed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import at, parse, queue, running, wait_until

from embargo_bot.app import App
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.packs import StageKind, StageState


def stage_of(item: Received) -> str:
    return str(parse(item)["X-Embargo-Stage"])


def body_of(item: Received) -> str:
    message = parse(item)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def notice_rcpts(relay: StandInRelay) -> set[str]:
    return {
        r.lower() for item in relay.received if stage_of(item) == "notice" for r in item.rcpt_tos
    }


def break_list(lists_dir: Path, key: str) -> str:
    """Give a list an address outside its domains: invalid, as an admin's slip makes it."""
    path = lists_dir / f"{key}.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text(good + "  - email: leak@elsewhere.example\n", encoding="utf-8")
    return good


async def test_a_wave_holds_an_invalid_list_alerts_the_contact_and_sends_once_it_is_fixed(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any], lists_dir: Path
) -> None:
    app = app_with_relay
    pack = queue(app, make_request(lists="alpha,beta"))
    good_beta = break_list(lists_dir, "beta")
    async with running(app):
        await wait_until(lambda: any(stage_of(r) == "alert" for r in relay.received))
        [alert] = [r for r in relay.received if stage_of(r) == "alert"]
        assert alert.rcpt_tos == ("ocu@example.org",)  # the contact only
        text = body_of(alert)
        assert "'beta'" in text and "elsewhere.example" in text
        await wait_until(
            lambda: notice_rcpts(relay) == {"one@alpha.example", "shared@alpha.example"}
        )
        held = [s for s in app.store.stages(pack.id) if s.state is StageState.HELD]
        assert [(s.kind, s.wave, s.list_keys) for s in held] == [(StageKind.NOTICE, 1, ("beta",))]
        fixed_at = datetime.now(UTC)
        (lists_dir / "beta.yaml").write_text(good_beta, encoding="utf-8")
        await wait_until(lambda: "one@beta.example" in notice_rcpts(relay), within=15)
        assert datetime.now(UTC) - fixed_at < timedelta(seconds=15)
        await wait_until(
            lambda: all(
                s.state is StageState.DONE
                for s in app.store.stages(pack.id)
                if s.kind is StageKind.NOTICE
            )
        )
    # shared@alpha.example is on both lists: it had the notice once, from alpha.
    notices = [r for r in relay.received if stage_of(r) == "notice"]
    assert sorted(r.lower() for item in notices for r in item.rcpt_tos) == [
        "one@alpha.example",
        "one@beta.example",
        "shared@alpha.example",
    ]
    # The first report says the list was held; it does not claim everyone got it.
    reports = [body_of(r) for r in relay.received if stage_of(r) == "report"]
    assert reports and "'beta'" in reports[0]
    assert "Every recipient's message was accepted" not in reports[0]


async def test_a_list_still_invalid_at_the_lift_gets_the_live_email_report_names_the_gap(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any], lists_dir: Path
) -> None:
    app = app_with_relay
    lift = datetime.now(UTC) + timedelta(seconds=3)
    pack = queue(app, make_request(lists="alpha,beta", lift=at(lift)))
    good_beta = break_list(lists_dir, "beta")
    async with running(app):
        await wait_until(lambda: any(stage_of(r) == "alert" for r in relay.received))
        # Fixed only once the lift has passed: too late for the notice.
        await wait_until(lambda: datetime.now(UTC) > lift + timedelta(seconds=0.5), within=6)
        (lists_dir / "beta.yaml").write_text(good_beta, encoding="utf-8")
        await wait_until(
            lambda: (
                not [s for s in app.store.stages(pack.id) if s.state is StageState.HELD]
                and sum(stage_of(r) == "report" for r in relay.received) >= 3
            ),
            within=10,
        )
    assert notice_rcpts(relay) == {"one@alpha.example", "shared@alpha.example"}
    live = {r for item in relay.received if stage_of(item) == "live" for r in item.rcpt_tos}
    assert "one@alpha.example" in live
    held = [
        s
        for s in app.store.stages(pack.id)
        if s.kind is StageKind.NOTICE and s.list_keys == ("beta",)
    ]
    assert [s.state for s in held] == [StageState.SKIPPED]
    assert held[0].detail is not None and "'beta'" in held[0].detail
    reports = [body_of(r) for r in relay.received if stage_of(r) == "report"]
    never = [text for text in reports if "never had the notice" in text]
    assert never and "'beta'" in never[0]
    for text in reports:
        if "'beta'" in text:
            assert "Every recipient's message was accepted" not in text


async def test_a_wave_whose_only_list_is_invalid_is_held_not_failed(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any], lists_dir: Path
) -> None:
    app = app_with_relay
    pack = queue(app, make_request(lists="beta"))
    good_beta = break_list(lists_dir, "beta")
    async with running(app):
        await wait_until(lambda: any(stage_of(r) == "alert" for r in relay.received))
        [wave] = [s for s in app.store.stages(pack.id) if s.kind is StageKind.NOTICE]
        assert wave.state is StageState.HELD
        (lists_dir / "beta.yaml").write_text(good_beta, encoding="utf-8")
        await wait_until(lambda: "one@beta.example" in notice_rcpts(relay), within=15)
    assert notice_rcpts(relay) == {"one@beta.example", "shared@alpha.example"}
