"""Bounces end to end: the service sends through a real relay, reports arrive in a
real Dovecot as a relay's mail would (IMAP APPEND), and people see the result."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bounce_samples import (
    MALFORMED_NO_STATUS,
    ORDINARY_MAIL,
    OUT_OF_OFFICE,
    original,
    postfix_report,
)
from conftest import at, deliveries_of, parse, queue, running, wait_until
from servers.dovecot import free_port

from embargo_bot.app import App, open_app
from embargo_bot.cli.main import main
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.bounces import BounceNote
from embargo_bot.domain.outcomes import accepted
from embargo_bot.domain.packs import DeliveryState, NewDelivery, PackState, StageKind
from embargo_bot.settings import Settings

if TYPE_CHECKING:
    from servers.dovecot import ImapUser

RETURN_PATH = "bounces@example.org"
USER_UNKNOWN = "smtp; 550 5.1.1 <one@alpha.example>: Recipient address rejected: User unknown"


def imap_settings(user: ImapUser, **more: Any) -> dict[str, Any]:
    return {
        "bounce_imap_host": user.server.host,
        "bounce_imap_port": user.server.port,
        "bounce_imap_username": user.username,
        "bounce_imap_password": user.password,
        "bounce_imap_security": "none",
        "bounce_poll": 0.2,
        "return_path": RETURN_PATH,
        **more,
    }


@pytest.fixture
def bounce_app(
    relay: StandInRelay, make_settings: Callable[..., Settings], imap_user: ImapUser
) -> Iterator[App]:
    with open_app(make_settings(relay, **imap_settings(imap_user))) as app:
        yield app


def stage_of(item: Received) -> str:
    return str(parse(item)["X-Embargo-Stage"])


def sent_to(relay: StandInRelay, stage: str, address: str) -> Received:
    [item] = [r for r in relay.received if stage_of(r) == stage and address in r.rcpt_tos]
    return item


def report_for(
    item: Received,
    *,
    address: str = "one@alpha.example",
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = USER_UNKNOWN,
    message_id: str | None = "",
    envelope_to: str = RETURN_PATH,
) -> bytes:
    """A Postfix report about a message the relay received, returning its headers."""
    message = parse(item)
    returned = original(
        to=address,
        message_id=str(message["Message-ID"]) if message_id == "" else message_id,
        pack=str(message["X-Embargo-Pack"]),
        stage=str(message["X-Embargo-Stage"]),
    )
    return postfix_report(
        envelope_to=envelope_to,
        recipients=((address, action, status, diagnostic),),
        returned=returned,
        headers_only=True,
    )


def body_of(item: Received) -> str:
    part = parse(item).get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def notice_sent(app: App, relay: StandInRelay, make_request: Callable[..., Any]) -> str:
    pack = queue(app, make_request(lists="alpha"))
    await wait_until(
        lambda: len(deliveries_of(app, pack.id, StageKind.NOTICE, DeliveryState.SENT)) == 2
    )
    return pack.id


async def test_a_permanent_failure_bounces_the_delivery_and_alerts_the_contact(
    bounce_app: App,
    relay: StandInRelay,
    imap_user: ImapUser,
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
) -> None:
    app = bounce_app
    async with running(app):
        pack_id = await notice_sent(app, relay, make_request)
        notice = sent_to(relay, "notice", "one@alpha.example")
        assert notice.mail_from == RETURN_PATH  # the return path, not the From address
        uid = imap_user.append(report_for(notice))
        await wait_until(lambda: any(stage_of(r) == "alert" for r in relay.received))
    [delivery] = [
        d for d in deliveries_of(app, pack_id, StageKind.NOTICE) if d.email == "one@alpha.example"
    ]
    assert delivery.state is DeliveryState.BOUNCED
    assert delivery.bounce is not None and delivery.bounce.status == "5.1.1"
    assert "User unknown" in delivery.bounce.diagnostic
    other = [d for d in deliveries_of(app, pack_id, StageKind.NOTICE) if d.email != delivery.email]
    assert [d.state for d in other] == [DeliveryState.SENT]
    assert app.store.stage_summary(delivery.stage_id).bounced == 1
    # The contact is told who, from which list, and why; nobody else is.
    [alert] = [r for r in relay.received if stage_of(r) == "alert"]
    assert alert.rcpt_tos == ("ocu@example.org",)
    text = body_of(alert)
    assert "Alpha One <one@alpha.example>" in text and "(list alpha)" in text
    assert "5.1.1" in text and "User unknown" in text
    assert "partner's server refused" in str(parse(alert)["Subject"])
    # Applied, so marked seen; the mailbox is never emptied.
    assert imap_user.unseen() == [] and imap_user.uids() == [uid]
    # The store keeps the report's hash and words, never the report itself.
    path = app.store.path
    assert path is not None
    for stored in (path, path.with_name(path.name + "-wal")):
        if stored.exists():
            assert b"4Q1xYz2Lw3z9sT" not in stored.read_bytes()

    [entry] = [e for e in app.store.audit_entries() if e.action == "delivery bounced"]
    assert entry.pack_id == pack_id and entry.detail["email"] == "one@alpha.example"
    assert entry.detail["status"] == "5.1.1" and entry.detail["list"] == "alpha"
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["show", pack_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    [entry] = [d for d in shown["deliveries"] if d["email"] == "one@alpha.example"]
    assert entry["state"] == "bounced" and entry["bounce"]["status"] == "5.1.1"
    assert "User unknown" in entry["bounce"]["diagnostic"]
    [notice_stage] = [s for s in shown["stages"] if s["stage"] == "notice"]
    assert (notice_stage["sent"], notice_stage["bounced"]) == (1, 1)
    assert shown["link_check"]["alerts"] == []  # an alert about a bounce, not about the link
    assert main(["show", pack_id]) == 0
    stages, _, link_check = capsys.readouterr().out.partition("Link check:")
    summary = " ".join(stages.split())
    numbers = r"notice wave 1 To alpha Due [\d-]+ [\d:]+ \w+ State done Sent 1 Failed 0 Bounced 1 "
    assert re.search(numbers, summary), summary
    assert "one@alpha.example: bounced: 5.1.1" in summary
    # The alert's stage says what it was about, once, and how it went.
    assert summary.count("was refused by their mail server") == 1
    assert "User unknown (1 sent, 0 failed)" in summary
    assert "bounced" not in link_check
    assert main(["show", pack_id, "--recipients"]) == 0
    table = " ".join(capsys.readouterr().out.split())
    assert "bounced" in table and "User unknown" in table


async def test_a_delay_is_recorded_and_changes_nothing_else(
    bounce_app: App,
    relay: StandInRelay,
    imap_user: ImapUser,
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
) -> None:
    app = bounce_app
    async with running(app):
        pack_id = await notice_sent(app, relay, make_request)
        notice = sent_to(relay, "notice", "one@alpha.example")
        delayed = report_for(notice, action="delayed", status="4.4.1", diagnostic="timed out")
        imap_user.append(delayed)
        await wait_until(lambda: imap_user.unseen() == [])
    [delivery] = [
        d for d in deliveries_of(app, pack_id, StageKind.NOTICE) if d.email == "one@alpha.example"
    ]
    assert delivery.state is DeliveryState.SENT and delivery.bounce is None
    assert delivery.delay is not None and delivery.delay.words == "4.4.1 timed out"
    assert not [r for r in relay.received if stage_of(r) == "alert"]
    # Shown as information on the delivery; the stage's numbers are as before.
    assert main(["show", pack_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    [entry] = [d for d in shown["deliveries"] if d["email"] == "one@alpha.example"]
    assert entry["state"] == "sent" and entry["bounce"] is None
    assert (entry["delay"]["status"], entry["delay"]["diagnostic"]) == ("4.4.1", "timed out")
    [notice_stage] = [s for s in shown["stages"] if s["stage"] == "notice"]
    assert (notice_stage["sent"], notice_stage["bounced"]) == (2, 0)
    assert main(["show", pack_id, "--recipients"]) == 0
    table = " ".join(capsys.readouterr().out.replace("\u2502", " ").split())
    assert "(delayed at the partner's server: 4.4.1 timed out)" in table


async def test_what_is_not_a_bounce_is_left_unread_and_never_stops_the_reader(
    bounce_app: App, relay: StandInRelay, imap_user: ImapUser, make_request: Callable[..., Any]
) -> None:
    app = bounce_app
    async with running(app):
        pack_id = await notice_sent(app, relay, make_request)
        notice = sent_to(relay, "notice", "one@alpha.example")
        left = [
            imap_user.append(OUT_OF_OFFICE),
            imap_user.append(ORDINARY_MAIL),
            imap_user.append(MALFORMED_NO_STATUS),
            # A report for a message the store never sent.
            imap_user.append(report_for(notice, message_id="<never-sent@example.org>")),
        ]
        applied = imap_user.append(report_for(notice))
        await wait_until(lambda: applied not in imap_user.unseen())
        await asyncio.sleep(0.5)  # another read or two
    assert imap_user.unseen() == left
    states = {d.email: d.state for d in deliveries_of(app, pack_id, StageKind.NOTICE)}
    assert states == {
        "one@alpha.example": DeliveryState.BOUNCED,
        "shared@alpha.example": DeliveryState.SENT,
    }


async def test_a_verp_addressed_report_matches_by_its_token(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    imap_user: ImapUser,
    make_request: Callable[..., Any],
) -> None:
    settings = make_settings(relay, **imap_settings(imap_user, return_path_verp=True))
    with open_app(settings) as app:
        async with running(app):
            pack_id = await notice_sent(app, relay, make_request)
            notice = sent_to(relay, "notice", "shared@alpha.example")
            [delivery] = [
                d
                for d in deliveries_of(app, pack_id, StageKind.NOTICE)
                if d.email == "shared@alpha.example"
            ]
            assert delivery.verp_token is not None
            tagged = f"bounces+{delivery.verp_token}@example.org"
            assert notice.mail_from == tagged
            # Neither Message-ID nor pack returned: only the token names the delivery.
            raw = postfix_report(
                envelope_to=tagged,
                recipients=(("shared@alpha.example", "failed", "5.2.2", "mailbox full"),),
                returned=original(
                    to="shared@alpha.example", message_id=None, pack=None, stage=None
                ),
                headers_only=True,
            )
            imap_user.append(raw)
            await wait_until(lambda: any(stage_of(r) == "alert" for r in relay.received))
        states = {d.email: d.state for d in deliveries_of(app, pack_id, StageKind.NOTICE)}
    assert states["shared@alpha.example"] is DeliveryState.BOUNCED
    assert states["one@alpha.example"] is DeliveryState.SENT


async def test_reports_are_read_from_the_folder_and_moved_to_the_done_folder(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    imap_user: ImapUser,
    make_request: Callable[..., Any],
) -> None:
    """EMBARGO_BOT_BOUNCE_IMAP_FOLDER and _DONE_FOLDER, as the service is given them."""
    imap_user.create_folder("Bounces")
    folders = {"bounce_imap_folder": "Bounces", "bounce_imap_done_folder": "Applied"}
    with open_app(make_settings(relay, **imap_settings(imap_user, **folders))) as app:
        async with running(app):
            pack_id = await notice_sent(app, relay, make_request)
            shared = sent_to(relay, "notice", "shared@alpha.example")
            one = sent_to(relay, "notice", "one@alpha.example")
            elsewhere = imap_user.append(report_for(one))  # INBOX: not the bounce folder
            kept = imap_user.append(OUT_OF_OFFICE, folder="Bounces")
            imap_user.append(report_for(shared, address="shared@alpha.example"), folder="Bounces")
            await wait_until(lambda: imap_user.uids("Bounces") == [kept])
            await wait_until(lambda: _alerts(relay) == 1)
            await asyncio.sleep(0.5)  # another read or two
        states = {d.email: d.state for d in deliveries_of(app, pack_id, StageKind.NOTICE)}
    assert states == {
        "one@alpha.example": DeliveryState.SENT,
        "shared@alpha.example": DeliveryState.BOUNCED,
    }
    [moved] = imap_user.uids("Applied")
    assert "\\Seen" in imap_user.flags(moved, "Applied")
    assert imap_user.unseen("Bounces") == [kept]
    assert imap_user.unseen() == [elsewhere]


def bounced_in_store(
    app: App,
    pack_id: str,
    emails: list[str],
    status: str,
    words: str,
    ago: timedelta = timedelta(0),
) -> None:
    """A notice of this pack sent to ``emails`` and bounced, as the reader records it."""
    store, now = app.store, datetime.now(UTC)
    notice = store.stage_of(pack_id, StageKind.NOTICE).id
    assert store.claim_stage(notice, "test", now, now + timedelta(minutes=1))
    listed = [NewDelivery(e, None, "alpha", f"<{pack_id}.{e}>") for e in emails]
    store.expand_stage(notice, listed, now)
    for item in listed:
        store.record_attempt(notice, item.email, accepted(250, "ok"), now, state=DeliveryState.SENT)
        note = BounceNote(notice, item.email, True, status, words)
        assert store.apply_bounces(f"{pack_id}/{item.email}", [note], now - ago)


def listed_line(lists_dir: Path, address: str) -> int:
    lines = (lists_dir / "alpha.yaml").read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if address in line)


def test_lists_bounces_names_file_and_line_the_last_reason_and_the_packs(
    app_with_relay: App,
    env: dict[str, str],
    lists_dir: Path,
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = app_with_relay
    assert main(["lists", "bounces"]) == 0
    assert capsys.readouterr().out == "No address has bounced.\n"
    old, first, second = (queue(app, make_request(lists="alpha")) for _ in range(3))
    # Ten days ago: one still listed, one since taken off the list.
    long_ago = timedelta(days=10)
    gone = ["shared@alpha.example", "gone@alpha.example"]
    bounced_in_store(app, old.id, gone, "5.7.1", "blocked", ago=long_ago)
    bounced_in_store(app, first.id, ["one@alpha.example"], "5.1.1", "user unknown")
    bounced_in_store(
        app, second.id, ["one@alpha.example", "shared@alpha.example"], "5.2.2", "mailbox full"
    )
    assert main(["lists", "bounces", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["bounces"]
    one = f"recipients/alpha.yaml:{listed_line(lists_dir, 'one@alpha.example')}"
    shared = f"recipients/alpha.yaml:{listed_line(lists_dir, 'shared@alpha.example')}"
    assert [(b["email"], b["listed_at"], b["packs"], b["last"]["status"]) for b in found] == [
        ("one@alpha.example", one, 2, "5.2.2"),
        ("shared@alpha.example", shared, 2, "5.2.2"),
        ("gone@alpha.example", "recipients/alpha.yaml (no longer listed)", 1, "5.7.1"),
    ]
    assert found[0]["last"]["diagnostic"] == "mailbox full"
    assert main(["lists", "bounces"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert one in out and shared in out and "5.2.2 mailbox full" in out
    # The last day: what bounced ten days ago is left out, and its pack is not counted.
    assert main(["lists", "bounces", "--since", "1", "--json"]) == 0
    recent = json.loads(capsys.readouterr().out)
    assert recent["since_days"] == 1
    assert [(b["email"], b["packs"]) for b in recent["bounces"]] == [
        ("one@alpha.example", 2),
        ("shared@alpha.example", 1),
    ]
    assert main(["lists", "bounces", "--since", "30", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["bounces"]) == 3
    with pytest.raises(SystemExit) as exited:
        main(["lists", "bounces", "--since", "soon"])
    assert exited.value.code == 2
    assert "'soon' is not a number of days" in capsys.readouterr().err


def test_doctor_reports_the_bounce_mailbox(
    env: dict[str, str],
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor"]) in (0, 1)
    line = [x for x in capsys.readouterr().out.splitlines() if "bounce mailbox" in x]
    assert line == [
        "OK    bounce mailbox: EMBARGO_BOT_BOUNCE_IMAP_HOST is not set: bounces are not read"
    ]
    for name, value in imap_settings(imap_user).items():
        monkeypatch.setenv(f"EMBARGO_BOT_{name.upper()}", str(value))
    imap_user.append(OUT_OF_OFFICE)
    main(["doctor"])
    line = [x for x in capsys.readouterr().out.splitlines() if "bounce mailbox" in x]
    where = f"IMAP 127.0.0.1:{imap_user.server.port}"
    assert line == [
        f"OK    bounce mailbox: {where} (none): logged in as {imap_user.username}, "
        "INBOX has 1 unread"
    ]
    monkeypatch.setenv("EMBARGO_BOT_BOUNCE_IMAP_PASSWORD", "wrong-password")
    assert main(["doctor", "--json"]) == 1
    out = capsys.readouterr().out
    [check] = [c for c in json.loads(out)["checks"] if c["check"] == "bounce mailbox"]
    assert check["status"] == "fail"
    assert check["detail"] == (
        f"{where}: login refused for user {imap_user.username}; "
        "check the EMBARGO_BOT_BOUNCE_IMAP_* settings"
    )
    assert "wrong-password" not in out and imap_user.password not in out
    port = free_port()  # nobody listens there
    monkeypatch.setenv("EMBARGO_BOT_BOUNCE_IMAP_PORT", str(port))
    assert main(["doctor"]) == 1
    line = [x for x in capsys.readouterr().out.splitlines() if "bounce mailbox" in x]
    assert line == [
        f"FAIL  bounce mailbox: IMAP 127.0.0.1:{port}: connection refused (is the server up, "
        "and is this the port?); check the EMBARGO_BOT_BOUNCE_IMAP_* settings"
    ]


async def test_the_live_email_still_goes_to_a_bounced_partner_and_its_bounce_alerts_too(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    imap_user: ImapUser,
    make_request: Callable[..., Any],
) -> None:
    lift = datetime.now(UTC) + timedelta(seconds=3)
    with open_app(make_settings(relay, **imap_settings(imap_user))) as app:
        pack = queue(app, make_request(lists="alpha", lift=at(lift)))
        async with running(app):
            await wait_until(lambda: bool(_sent_notices(relay)))
            imap_user.append(report_for(sent_to(relay, "notice", "one@alpha.example")))
            await wait_until(lambda: _alerts(relay) == 1)
            await wait_until(lambda: any(stage_of(r) == "live" for r in relay.received))
            live = sent_to(relay, "live", "one@alpha.example")
            assert live.received_at >= lift
            # The pack is done once the live email's report has gone: the alert still goes.
            await wait_until(lambda: app.store.get_pack(pack.id).state is PackState.DONE)
            imap_user.append(report_for(live))
            await wait_until(lambda: _alerts(relay) == 2)
        states = {(d.kind, d.email): d.state for d in app.store.deliveries(pack.id)}
    assert states[(StageKind.NOTICE, "one@alpha.example")] is DeliveryState.BOUNCED
    assert states[(StageKind.LIVE, "one@alpha.example")] is DeliveryState.BOUNCED
    assert states[(StageKind.LIVE, "shared@alpha.example")] is DeliveryState.SENT
    texts = [body_of(r) for r in relay.received if stage_of(r) == "alert"]
    assert "the embargoed notice to Alpha One" in texts[0]
    assert "the live email to Alpha One" in texts[1]


def _sent_notices(relay: StandInRelay) -> list[Received]:
    return [r for r in relay.received if stage_of(r) == "notice"]


def _alerts(relay: StandInRelay) -> int:
    return sum(stage_of(r) == "alert" for r in relay.received)
