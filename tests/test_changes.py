"""Embargoes change: waves, clearance, reschedule, amend, withdraw, calendar, test sends.

Every test runs the real service against a real SMTP server on 127.0.0.1 and
reads what partners received by the server's own clock.
"""

from __future__ import annotations

import email
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import icalendar
import pytest
from conftest import (
    RELEASE_SECRET,
    PackFiles,
    at,
    deliveries_of,
    parse,
    queue,
    running,
    stage_closed,
    stages_closed,
    store_dump,
    wait_until,
)

from embargo_bot.app import App, open_app
from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.errors import InputError, ListError, TemplateError
from embargo_bot.domain.packs import DeliveryState, PackState, StageKind, StageState
from embargo_bot.domain.times import describe
from embargo_bot.officials.actions import approve_pack, cancel_pack
from embargo_bot.officials.changes import amend_pack, reschedule_pack
from embargo_bot.officials.intake import AmendRequest
from embargo_bot.officials.previews import preview, send_test
from embargo_bot.officials.status import pack_status
from embargo_bot.settings import Settings

ALPHA = {"one@alpha.example", "shared@alpha.example"}
EVERYONE = {"one@alpha.example", "shared@alpha.example", "one@beta.example"}
LONDON_WORDS = "GMT"  # tests run in winter or summer: only check the words' shape


def received(relay: StandInRelay, kind: StageKind) -> list[Received]:
    return [r for r in relay.received if parse(r)["X-Embargo-Stage"] == kind.value]


def rcpts(items: list[Received]) -> Counter[str]:
    return Counter(rcpt.lower() for item in items for rcpt in item.rcpt_tos)


def text_of(item: Received) -> str:
    body = parse(item).get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def calendar_of(item: Received) -> icalendar.Calendar:
    for part in parse(item).iter_attachments():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no calendar part")


def event_of(item: Received) -> Any:
    events = list(calendar_of(item).walk("VEVENT"))
    assert len(events) == 1
    return events[0]


def pdf_of(item: Received) -> bytes:
    for part in parse(item).iter_attachments():
        if part.get_content_type() == "application/pdf":
            return bytes(part.get_content())
    raise AssertionError("no PDF")


def soon(seconds: float) -> datetime:
    """A whole-second moment a little ahead, so emails state it exactly."""
    return (datetime.now(UTC) + timedelta(seconds=seconds + 1)).replace(microsecond=0)


async def test_two_waves_go_at_their_own_times_and_live_reaches_everyone_once(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    second_wave, lift = soon(1), soon(3)
    # beta repeats shared@alpha.example: it belongs to the first wave that names it.
    pack = queue(
        app,
        make_request(
            lists=None,
            notice_at=None,
            waves=("alpha@now", f"beta@{at(second_wave)}"),
            lift=at(lift),
        ),
    )
    async with running(app):
        await wait_until(lambda: stages_closed(app, pack.id), within=15)

    notices = received(relay, StageKind.NOTICE)
    assert rcpts(notices) == Counter(EVERYONE), "each address one notice, across waves"
    by_rcpt = {item.rcpt_tos[0].lower(): item.received_at for item in notices}
    assert all(by_rcpt[address] < second_wave for address in ALPHA)
    assert second_wave <= by_rcpt["one@beta.example"] < lift
    lives = received(relay, StageKind.LIVE)
    assert rcpts(lives) == Counter(EVERYONE)
    assert min(item.received_at for item in lives) >= lift

    status = pack_status(app, pack.id)
    waves = [
        (s.stage.label, s.stage.list_keys, s.summary.sent)
        for s in status.stages
        if s.stage.kind is not StageKind.REPORT
    ]
    assert waves == [
        ("notice wave 1", ("alpha",), 2),
        ("notice wave 2", ("beta",), 1),
        ("live", (), 3),
    ]


async def test_nothing_goes_before_clearance_and_the_queuer_cannot_clear(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    tmp_path: Path,
) -> None:
    with open_app(make_settings(relay, require_clearance=True)) as app:
        from embargo_bot.officials.actions import queue_pack

        pack = queue_pack(app, make_request(lift=at(soon(30))), created_by="alice")
        assert pack.awaiting_clearance
        # A preview works before clearance, and sends nothing.
        assert len(preview(app, pack.id, [StageKind.NOTICE], tmp_path / "p")) == 3
        async with running(app):
            await wait_until(lambda: datetime.now(UTC) > pack.created_at + timedelta(seconds=1.5))
            assert relay.received == [], "the notice was due, but not cleared"
            with open_app(app.settings) as cli:  # another process, as an official would
                with pytest.raises(InputError, match="must come from a different person"):
                    approve_pack(cli, pack.id, approver="alice")
                cleared_at = datetime.now(UTC)
                cleared = approve_pack(cli, pack.id, approver="bob")
            # The wave's time has passed: it goes at once.
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))

    assert cleared.cleared_by == "bob" and cleared.cleared_at is not None
    assert rcpts(received(relay, StageKind.NOTICE)) == Counter(EVERYONE)
    assert min(r.received_at for r in relay.received) - cleared_at < timedelta(seconds=2)


async def test_reschedule_after_the_notice_tells_exactly_the_holders_and_moves_the_live_email(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    old_lift, new_lift = soon(4), soon(6)
    pack = queue(app, make_request(lists="alpha", lift=at(old_lift)))
    async with running(app):
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        with open_app(app.settings) as cli:
            moved = reschedule_pack(cli, pack.id, lift=at(new_lift), by="frank")
        await wait_until(lambda: stages_closed(app, pack.id), within=15)

    assert moved.lift_at == new_lift and moved.lift_seq == 2
    changed = received(relay, StageKind.CHANGED)
    assert rcpts(changed) == Counter(ALPHA), "exactly those who hold the notice"
    assert all(item.received_at < old_lift for item in changed)
    zone = app.settings.zone
    for item in changed:
        words = text_of(item)
        assert describe(old_lift, zone) in words and describe(new_lift, zone) in words
        assert describe(new_lift, zone) in str(parse(item)["Subject"])
    lives = received(relay, StageKind.LIVE)
    assert rcpts(lives) == Counter(ALPHA), "the live email once, at the new time only"
    assert min(item.received_at for item in lives) >= new_lift

    # The calendar entry: one UID, a higher SEQUENCE, the new time.
    notice_event = event_of(received(relay, StageKind.NOTICE)[0])
    changed_event = event_of(changed[0])
    assert str(changed_event["UID"]) == str(notice_event["UID"])
    assert int(changed_event["SEQUENCE"]) > int(notice_event["SEQUENCE"])
    assert changed_event.decoded("DTSTART") == new_lift
    assert notice_event.decoded("DTSTART") == old_lift


async def test_reschedule_before_any_notice_just_moves_the_times(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    notice_at, new_lift = soon(1), soon(3)
    pack = queue(app, make_request(notice_at=at(notice_at), lift=at(soon(2))))
    reschedule_pack(app, pack.id, lift=at(new_lift), by="frank")
    async with running(app):
        await wait_until(lambda: stages_closed(app, pack.id), within=15)

    assert received(relay, StageKind.CHANGED) == []
    assert not any(s.kind is StageKind.CHANGED for s in app.store.stages(pack.id))
    notices = received(relay, StageKind.NOTICE)
    assert rcpts(notices) == Counter(EVERYONE)
    assert all(describe(new_lift, app.settings.zone) in text_of(item) for item in notices)
    assert min(item.received_at for item in received(relay, StageKind.LIVE)) >= new_lift


def test_reschedule_refuses_a_lift_before_a_wave_or_in_the_past_and_changes_nothing(
    app_with_relay: App, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    wave_at = datetime.now(UTC) + timedelta(hours=2)
    pack = queue(app, make_request(notice_at=at(wave_at), lift=at(wave_at + timedelta(hours=1))))
    before = store_dump(app.store.path)
    with pytest.raises(InputError, match="must go before the lift"):
        reschedule_pack(app, pack.id, lift=at(wave_at - timedelta(minutes=30)), by="frank")
    with pytest.raises(InputError, match="in the past"):
        reschedule_pack(app, pack.id, lift=at(datetime.now(UTC) - timedelta(minutes=1)), by="frank")
    assert store_dump(app.store.path) == before
    # Moving the wave too makes the earlier lift possible.
    earlier = wave_at - timedelta(minutes=30)
    moved = reschedule_pack(
        app,
        pack.id,
        lift=at(earlier),
        waves=(f"alpha,beta@{at(earlier - timedelta(minutes=5))}",),
        by="frank",
    )
    waves = [s for s in app.store.stages(pack.id) if s.kind is StageKind.NOTICE]
    assert [(s.wave, s.state, s.due_at) for s in waves] == [
        (1, StageState.SCHEDULED, earlier - timedelta(minutes=5)),
    ], "naming every list of a wave moves that wave, keeping its number"
    assert moved.lift_at == earlier


SHIPPED_LISTS = Path(__file__).resolve().parent.parent / "recipients"
UK = "police-scotland,nca,copfs,hmrc"


def readme_pack(app: App, make_request: Callable[..., Any], start: datetime) -> Any:
    """README "For officials" step 2: UK counterparts first, then devolved, then the lift."""
    return queue(
        app,
        make_request(
            lists=None,
            notice_at=None,
            waves=(f"{UK}@{at(start)}", f"devolved@{at(start + timedelta(hours=16))}"),
            lift=at(start + timedelta(hours=19)),
        ),
    )


def notice_waves(app: App, pack_id: str) -> list[tuple[int | None, tuple[str, ...], Any, Any]]:
    return [
        (s.wave, s.list_keys, s.due_at, s.state)
        for s in app.store.stages(pack_id)
        if s.kind is StageKind.NOTICE
    ]


def test_readme_step_4_moves_only_the_named_wave_and_keeps_every_list(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    with open_app(make_settings(recipients_dir=SHIPPED_LISTS)) as app:
        pack = readme_pack(app, make_request, start)
        new_lift, new_devolved = (
            start + timedelta(days=1, hours=19),
            start + timedelta(days=1, hours=16),
        )
        moved = reschedule_pack(
            app, pack.id, lift=at(new_lift), waves=(f"devolved@{at(new_devolved)}",), by="frank"
        )
        uk = tuple(UK.split(","))
        assert notice_waves(app, pack.id) == [
            (1, uk, start, StageState.SCHEDULED),
            (2, ("devolved",), new_devolved, StageState.SCHEDULED),
        ]
        assert set(moved.list_keys) == {*uk, "devolved"}
        live = next(s for s in app.store.stages(pack.id) if s.kind is StageKind.LIVE)
        assert live.due_at == new_lift


def test_reschedule_refuses_by_name_a_wave_it_leaves_after_the_new_lift(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    with open_app(make_settings(recipients_dir=SHIPPED_LISTS)) as app:
        pack = readme_pack(app, make_request, start)
        before = store_dump(app.store.path)
        earlier = start - timedelta(hours=1)
        with pytest.raises(InputError) as refused:
            reschedule_pack(
                app,
                pack.id,
                lift=at(earlier),
                waves=(f"devolved@{at(earlier - timedelta(hours=2))}",),
                by="frank",
            )
        assert "notice wave 1 (police-scotland, nca, copfs, hmrc)" in str(refused.value)
        assert f"--notice {UK}@WHEN" in str(refused.value)
        assert store_dump(app.store.path) == before


def test_reschedule_naming_part_of_a_wave_splits_it_and_refuses_lists_not_in_the_pack(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    with open_app(make_settings(recipients_dir=SHIPPED_LISTS)) as app:
        pack = readme_pack(app, make_request, start)
        lift = pack.lift_at
        before = store_dump(app.store.path)
        for waves, expected in [
            (("comms-subgroup@now",), "comms-subgroup is not one of this pack's lists"),
            (("nca@now", "nca,hmrc@now"), "nca is named twice"),
            (("police-scotlnd@now",), "did you mean police-scotland?"),
        ]:
            with pytest.raises(InputError, match=expected):
                reschedule_pack(app, pack.id, lift=at(lift), waves=waves, by="frank")
            assert store_dump(app.store.path) == before

        later = start + timedelta(hours=2)
        reschedule_pack(app, pack.id, lift=at(lift), waves=(f"nca,hmrc@{at(later)}",), by="frank")
        assert notice_waves(app, pack.id) == [
            (1, ("police-scotland", "copfs"), start, StageState.SCHEDULED),
            (3, ("nca", "hmrc"), later, StageState.SCHEDULED),
            (2, ("devolved",), start + timedelta(hours=16), StageState.SCHEDULED),
        ]
        assert set(app.store.get_pack(pack.id).list_keys) == {
            "police-scotland",
            "nca",
            "copfs",
            "hmrc",
            "devolved",
        }


async def test_amend_after_the_notice_updates_holders_and_later_waves_and_live_carry_v2(
    app_with_relay: App,
    relay: StandInRelay,
    make_request: Callable[..., Any],
    pack_files: PackFiles,
    tmp_path: Path,
) -> None:
    app = app_with_relay
    second_wave, lift = soon(2), soon(4)
    pack = queue(
        app,
        make_request(
            lists=None, notice_at=None, waves=("alpha@now", f"beta@{at(second_wave)}"),
            lift=at(lift),
        ),
    )  # fmt: skip
    new_release = tmp_path / "release-v2.md"
    new_release.write_text("# Revised\n\nWording agreed with partners: **v2**.\n", encoding="utf-8")
    new_pdf = tmp_path / "strategy-v2.pdf"
    new_pdf.write_bytes(sample_pdf(["Strategy, corrected edition"]))
    async with running(app):
        await wait_until(lambda: stages_closed_for(app, pack.id, wave=1))
        with open_app(app.settings) as cli:
            amended = amend_pack(
                cli,
                pack.id,
                AmendRequest(
                    pdf=new_pdf,
                    release=new_release,
                    social=None,
                    title="Serious Organised Crime Strategy (revised)",
                    url=None,
                    note="Police Scotland asked for a wording change in paragraph 2",
                ),
                by="carol",
            )
        await wait_until(lambda: stages_closed(app, pack.id), within=15)

    assert amended.version == 2
    updated = received(relay, StageKind.UPDATED)
    assert rcpts(updated) == Counter(ALPHA), "only those who held version 1"
    for item in updated:
        words = text_of(item)
        assert "Police Scotland asked for a wording change" in words
        assert "Wording agreed with partners" in words and RELEASE_SECRET not in words
        assert pdf_of(item) == new_pdf.read_bytes()
    later = [r for r in received(relay, StageKind.NOTICE) if r.rcpt_tos[0] == "one@beta.example"]
    assert len(later) == 1 and pdf_of(later[0]) == new_pdf.read_bytes()
    assert "(revised)" in str(parse(later[0])["Subject"])
    for item in received(relay, StageKind.LIVE):
        assert "(revised)" in str(parse(item)["Subject"])

    versions = pack_status(app, pack.id).versions
    assert [(v.version, v.changed_by, v.changed) for v in versions] == [
        (1, versions[0].changed_by, ()),
        (2, "carol", ("title", "pdf", "release")),
    ]
    # Both versions stay in the store, encrypted.
    stored = b"".join(p.read_bytes() for p in app.store.path.parent.glob("store.db*"))
    for secret in (RELEASE_SECRET, "Wording agreed with partners", "corrected edition"):
        assert secret.encode() not in stored
    first = app.messages.vault.open(app.store.sealed_content(pack.id, 1).release).decode()
    assert RELEASE_SECRET in first


def stages_closed_for(app: App, pack_id: str, *, wave: int) -> bool:
    return all(
        s.state in (StageState.DONE, StageState.SKIPPED)
        for s in app.store.stages(pack_id)
        if s.wave == wave
    )


async def test_withdrawal_after_the_notice_tells_holders_and_cancels_the_live_email(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    lift = soon(2)
    pack = queue(app, make_request(lift=at(lift)))
    async with running(app):
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        with open_app(app.settings) as cli:
            with pytest.raises(InputError, match="give --reason"):
                cancel_pack(cli, pack.id)
            cancel_pack(cli, pack.id, reason="Ministers have postponed publication", by="dave")
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.WITHDRAWN))
        await wait_until(lambda: datetime.now(UTC) > lift + timedelta(seconds=1), within=5)

    withdrawn = received(relay, StageKind.WITHDRAWN)
    assert rcpts(withdrawn) == Counter(EVERYONE)
    for item in withdrawn:
        words = text_of(item)
        assert "Ministers have postponed publication" in words
        assert "do not publish" in words.lower() and "delete" in words.lower()
        assert calendar_of(item)["METHOD"] == "CANCEL"
        event = event_of(item)
        assert str(event["STATUS"]) == "CANCELLED"
        assert str(event["UID"]) == str(event_of(received(relay, StageKind.NOTICE)[0])["UID"])
    assert received(relay, StageKind.LIVE) == []
    pack_now = app.store.get_pack(pack.id)
    assert pack_now.state is PackState.CANCELLED and pack_now.cancelled_by == "dave"
    assert app.store.stage_of(pack.id, StageKind.LIVE).state is StageState.CANCELLED


async def test_withdrawal_before_any_notice_needs_no_reason_and_sends_nothing(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    pack = queue(app, make_request(notice_at=at(soon(1)), lift=at(soon(2))))
    cancel_pack(app, pack.id)
    async with running(app):
        await wait_until(lambda: datetime.now(UTC) > pack.lift_at + timedelta(seconds=0.5))
    assert relay.received == []
    assert not any(s.kind is StageKind.WITHDRAWN for s in app.store.stages(pack.id))


async def test_a_test_send_goes_to_one_listed_checker_marked_test_without_the_live_link(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    pack = queue(app, make_request())
    with pytest.raises(ListError, match="not on any valid list"):
        await send_test(app, pack.id, "someone@elsewhere.example", [StageKind.NOTICE], by="grace")
    delivery = await send_test(
        app, pack.id, "ONE@alpha.example", [StageKind.NOTICE, StageKind.LIVE], by="grace"
    )

    assert delivery.state is DeliveryState.SENT and delivery.kind is StageKind.TEST
    [item] = relay.received
    assert item.rcpt_tos == ("one@alpha.example",)
    message = parse(item)
    assert message["X-Embargo-Stage"] == "test"
    assert str(message["Subject"]).startswith("OFFICIAL-SENSITIVE: TEST ONLY")
    enclosed = [p for p in message.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert len(enclosed) == 1, "the notice only: the live email waits for the lift"
    inner = enclosed[0].get_content()
    assert inner["X-Embargo-Stage"] == "notice"
    assert b"gov.example/isbn" not in item.data
    assert "live email is not attached" in text_of(item)
    # Recorded, and nothing else of the pack moved.
    assert [s.kind for s in app.store.stages(pack.id)] == [
        StageKind.NOTICE,
        StageKind.TEST,
        StageKind.LIVE,
    ]
    assert deliveries_of(app, pack.id, StageKind.NOTICE) == []


async def test_every_kind_of_email_names_itself_in_x_embargo_stage(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any], tmp_path: Path
) -> None:
    app = app_with_relay
    pack = queue(app, make_request(lists="alpha", lift=at(soon(3))))
    await send_test(app, pack.id, "one@alpha.example", [StageKind.NOTICE], by="grace")
    async with running(app):
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        note_file = tmp_path / "social.txt"
        note_file.write_text("Revised post", encoding="utf-8")
        request = AmendRequest(None, None, note_file, None, None, "Shorter social post")
        with open_app(app.settings) as cli:
            amend_pack(cli, pack.id, request, by="erin")
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.UPDATED))
        with open_app(app.settings) as cli:
            reschedule_pack(cli, pack.id, lift=at(soon(4)), by="frank")
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.CHANGED))
        with open_app(app.settings) as cli:
            cancel_pack(cli, pack.id, reason="Withdrawn for the test", by="erin")
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.WITHDRAWN))
    kinds = {str(parse(item)["X-Embargo-Stage"]) for item in relay.received}
    assert kinds == {"test", "notice", "updated", "changed", "withdrawn", "report"}
    uids = {str(event_of(item)["UID"]) for item in relay.received if kinds_with_calendar(item)}
    assert len(uids) == 1


def kinds_with_calendar(item: Received) -> bool:
    return any(p.get_content_type() == "text/calendar" for p in parse(item).iter_attachments())


def test_templates_can_be_overridden_and_a_broken_one_is_refused_at_queue(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    tmp_path: Path,
) -> None:
    custom = tmp_path / "my-templates"
    custom.mkdir()
    (custom / "notice.subject.j2").write_text(
        "{{ marking }}: EMBARGOED until {{ lift_words }}: {{ title }} [house style]\n",
        encoding="utf-8",
    )
    with open_app(make_settings(templates_dir=custom)) as app:
        pack = queue(app, make_request())
        [file, *_] = preview(app, pack.id, [StageKind.NOTICE], tmp_path / "out")
        message = email.message_from_bytes(file.path.read_bytes(), policy=policy.default)
        assert str(message["Subject"]).endswith("[house style]")

    (custom / "updated.txt.j2").write_text("{{ no_such_variable }}\n", encoding="utf-8")
    with open_app(make_settings(templates_dir=custom)) as app:
        before = store_dump(app.store.path)
        with pytest.raises(TemplateError, match="no_such_variable"):
            queue(app, make_request())
        assert store_dump(app.store.path) == before


def test_an_amend_that_changes_nothing_is_refused_and_stores_nothing(
    app_with_relay: App, make_request: Callable[..., Any], pack_files: PackFiles, tmp_path: Path
) -> None:
    app = app_with_relay
    pack = queue(app, make_request())
    before = store_dump(app.store.path)
    copy = tmp_path / "same-release.md"
    copy.write_bytes(pack_files.release.read_bytes())
    same = AmendRequest(pack_files.pdf, copy, pack_files.social, pack.title, pack.url, "No change")
    with pytest.raises(InputError) as refused:
        amend_pack(app, pack.id, same, by="frank")
    assert str(refused.value).count("\n") == 0, "one line"
    assert "nothing to amend" in str(refused.value) and "version 1" in str(refused.value)
    assert store_dump(app.store.path) == before

    # Only what differs counts as changed.
    social = tmp_path / "social-v2.txt"
    social.write_text("Revised post", encoding="utf-8")
    partly = AmendRequest(None, copy, social, pack.title, None, "Shorter post")
    assert amend_pack(app, pack.id, partly, by="frank").version == 2
    assert app.store.versions(pack.id)[-1].changed == ("social",)


async def test_moving_a_later_wave_after_the_first_has_gone_keeps_everyone_on_the_live_email(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    pack = queue(
        app,
        make_request(
            lists=None,
            notice_at=None,
            waves=("alpha@now", f"beta@{at(soon(20))}"),
            lift=at(soon(30)),
        ),
    )
    async with running(app):
        await wait_until(lambda: app.store.stages(pack.id)[0].state is StageState.DONE, within=10)
        new_lift = soon(5)
        with open_app(app.settings) as cli:
            with pytest.raises(InputError, match="alpha's notice wave has already started"):
                reschedule_pack(cli, pack.id, lift=at(new_lift), waves=("alpha@now",), by="frank")
            reschedule_pack(
                cli, pack.id, lift=at(new_lift), waves=(f"beta@{at(soon(3))}",), by="frank"
            )
        await wait_until(lambda: stages_closed(app, pack.id), within=15)

    assert rcpts(received(relay, StageKind.LIVE)) == Counter(EVERYONE)
    assert rcpts(received(relay, StageKind.NOTICE)) == Counter(EVERYONE)
    assert rcpts(received(relay, StageKind.CHANGED)) == Counter(ALPHA)
    assert all(s.state is not StageState.CANCELLED for s in app.store.stages(pack.id))
