"""Delivery you can trust: a relay on 127.0.0.1 that misbehaves on purpose.

Each fault ends in the right recorded outcome (every attempt kept) and the
right delivery report to the pack's contact.
"""

from __future__ import annotations

import asyncio
import email
import itertools
import logging
import os
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PacedHandler,
    at,
    deliveries_of,
    queue,
    running,
    stage_closed,
    stages_closed,
    start_service,
    wait_until,
    write_big_list,
)

from embargo_bot.app import App, open_app
from embargo_bot.cli.output import status_json
from embargo_bot.devtools.standin_relay import (
    CapturingHandler,
    Received,
    StandInRelay,
    free_loopback_port,
)
from embargo_bot.domain.outcomes import OutcomeKind
from embargo_bot.domain.packs import DeliveryState, StageKind, StageState
from embargo_bot.officials.status import pack_status
from embargo_bot.settings import Settings

EVERYONE = {"one@alpha.example", "shared@alpha.example", "one@beta.example"}
FAST_RETRIES = {"retry_backoff": "0.1s", "retry_for": "20s", "smtp_timeout": 0.5}


def stage_of(item: Received) -> str:
    return str(email.message_from_bytes(item.data, policy=policy.default)["X-Embargo-Stage"])


def partners(relay: StandInRelay, kind: StageKind) -> Counter[str]:
    return Counter(
        rcpt.lower() for item in relay.received if stage_of(item) == kind for rcpt in item.rcpt_tos
    )


def reports(relay: StandInRelay) -> list[str]:
    found = []
    for item in relay.received:
        message = email.message_from_bytes(item.data, policy=policy.default)
        if message["X-Embargo-Stage"] == "report":
            body = message.get_body(("plain",))
            assert body is not None
            found.append(f"{message['Subject']}\n{body.get_content()}")
    return found


class FlakyHandler(CapturingHandler):
    """Refuses chosen recipients at RCPT: some for a while (451), some for good (550)."""

    def __init__(self, *, busy: dict[str, int], refuse: set[str]) -> None:
        super().__init__()
        self.busy = busy  # address -> how many times to answer 451 first
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.busy.get(address, 0) > 0:
            self.busy[address] -= 1
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class DroppingHandler(CapturingHandler):
    """Drops the connection in the middle of DATA, once, for one recipient."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.victim in envelope.rcpt_tos:
            self.victim = ""
            server.transport.close()  # the relay goes away before it answers
            return "451 4.3.0 never seen: the connection is already closed"
        return await super().handle_DATA(server, session, envelope)


class StallingHandler(CapturingHandler):
    """Sits on one recipient's message well past the client's timeout, once."""

    def __init__(self, victim: str, stall: float) -> None:
        super().__init__()
        self.victim = victim
        self.stall = stall
        self.stalled: bytes = b""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.victim in envelope.rcpt_tos:
            self.victim = ""
            self.stalled = bytes(envelope.original_content or envelope.content)
            await asyncio.sleep(self.stall)
            return "451 4.4.2 timed out: not kept"
        return await super().handle_DATA(server, session, envelope)


@asynccontextmanager
async def refusing_greeting(port: int) -> AsyncIterator[None]:
    """A relay that answers every connection with 421 and hangs up (RFC 5321 3.8)."""

    async def greet(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"421 4.3.2 relay.example.org Service not available, closing channel\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


def attempts_of(app: App, pack_id: str, address: str, kind: StageKind) -> list[Any]:
    stage_ids = {s.id for s in app.store.stages(pack_id) if s.kind is kind}
    return [
        a for a in app.store.attempts(pack_id) if a.email == address and a.stage_id in stage_ids
    ]


async def test_451_is_retried_until_accepted_and_550_fails_at_once_with_its_reason(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    handler = FlakyHandler(busy={"one@alpha.example": 2}, refuse={"one@beta.example"})
    with StandInRelay(handler) as relay, open_app(make_settings(relay, **FAST_RETRIES)) as app:
        pack = queue(app, make_request())
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.REPORT))
        greylisted = attempts_of(app, pack.id, "one@alpha.example", StageKind.NOTICE)
        refused = attempts_of(app, pack.id, "one@beta.example", StageKind.NOTICE)
        states = {d.email: d for d in deliveries_of(app, pack.id, StageKind.NOTICE)}
        document = status_json(pack_status(app, pack.id), now=app.clock(), with_deliveries=True)

    assert [(a.outcome, a.code) for a in greylisted] == [
        (OutcomeKind.TEMPORARY, 451),
        (OutcomeKind.TEMPORARY, 451),
        (OutcomeKind.ACCEPTED, 250),
    ]
    assert greylisted[0].reply == "4.7.1 Greylisted, please try again later"
    assert states["one@alpha.example"].state is DeliveryState.SENT
    assert [(a.outcome, a.code) for a in refused] == [(OutcomeKind.PERMANENT, 550)]
    assert states["one@beta.example"].state is DeliveryState.FAILED
    assert "User unknown" in (states["one@beta.example"].reply or "")
    assert partners(relay, StageKind.NOTICE) == Counter(EVERYONE - {"one@beta.example"})

    [report] = reports(relay)
    assert "2 sent, 1 failed" in report
    assert "one@beta.example: 550 5.1.1" in report and "User unknown" in report
    # show --json carries every attempt.
    logged = next(
        d["attempt_log"] for d in document["deliveries"] if d["email"] == "one@alpha.example"
    )
    assert [entry["code"] for entry in logged] == [451, 451, 250]


async def test_421_on_connect_is_retried_until_the_relay_takes_the_mail(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    port = free_loopback_port()
    with open_app(make_settings(smtp_port=port, **FAST_RETRIES)) as app:
        pack = queue(app, make_request())
        async with running(app):
            async with refusing_greeting(port):
                await wait_until(lambda: len(app.store.attempts(pack.id)) >= 2)
            with StandInRelay(port=port) as relay:
                await wait_until(lambda: stage_closed(app, pack.id, StageKind.REPORT))
        notices = deliveries_of(app, pack.id, StageKind.NOTICE)
        first_attempts = [a for a in app.store.attempts(pack.id) if a.number == 1]

    assert {d.state for d in notices} == {DeliveryState.SENT}
    assert partners(relay, StageKind.NOTICE) == Counter(EVERYONE), "each exactly once"
    refusals = [a for a in first_attempts if a.code == 421]
    assert refusals and all(a.outcome is OutcomeKind.TEMPORARY for a in refusals)
    assert "Service not available" in refusals[0].reply
    assert any("3 sent, 0 failed" in report for report in reports(relay))


async def test_a_connection_dropped_mid_data_is_retried_and_delivered_once(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    handler = DroppingHandler(victim="shared@alpha.example")
    with StandInRelay(handler) as relay, open_app(make_settings(relay, **FAST_RETRIES)) as app:
        pack = queue(app, make_request())
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        tries = attempts_of(app, pack.id, "shared@alpha.example", StageKind.NOTICE)

    assert [a.outcome for a in tries] == [OutcomeKind.TEMPORARY, OutcomeKind.ACCEPTED]
    assert "connection" in tries[0].reply.lower() or "disconnect" in tries[0].reply.lower()
    assert partners(relay, StageKind.NOTICE) == Counter(EVERYONE)


async def test_a_relay_that_stalls_past_the_timeout_is_given_up_on_and_retried(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    handler = StallingHandler(victim="one@beta.example", stall=3.0)
    settings = {**FAST_RETRIES, "smtp_timeout": 0.3}
    with StandInRelay(handler) as relay, open_app(make_settings(relay, **settings)) as app:
        pack = queue(app, make_request())
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        tries = attempts_of(app, pack.id, "one@beta.example", StageKind.NOTICE)

    assert [a.outcome for a in tries] == [OutcomeKind.TEMPORARY, OutcomeKind.ACCEPTED]
    assert tries[0].reply.startswith("timed out (the relay may or may not have taken it)")
    [retried] = [r for r in relay.received if r.rcpt_tos == ("one@beta.example",)]
    assert retried.data == handler.stalled, "a retry sends the same bytes, same Message-ID"
    assert (tries[1].at - tries[0].at) < timedelta(seconds=3), "did not wait out the stall"
    assert partners(relay, StageKind.NOTICE) == Counter(EVERYONE)


async def test_relay_down_at_the_lift_the_live_email_goes_as_soon_as_it_is_back(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_loopback_port()
    lift = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    with open_app(make_settings(smtp_port=port, **FAST_RETRIES)) as app:
        pack = queue(app, make_request(lift=at(lift)))
        async with running(app):
            with StandInRelay(port=port) as before:
                await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
            # Down through the lift...
            await wait_until(lambda: datetime.now(UTC) > lift + timedelta(seconds=1.5), within=6)
            back_at = datetime.now(UTC)
            with StandInRelay(port=port) as after:
                await wait_until(lambda: stage_closed(app, pack.id, StageKind.LIVE))
        status = pack_status(app, pack.id)

    assert partners(before, StageKind.LIVE) == Counter()
    assert partners(after, StageKind.LIVE) == Counter(EVERYONE)
    live = [r for r in after.received if stage_of(r) == "live"]
    assert min(r.received_at for r in live) >= back_at >= lift + timedelta(seconds=1.5)
    # As soon as it could: the first try after it came back was taken, for everyone.
    tries = [a for a in status.attempts if a.stage_id == live_id(status) and a.at >= back_at]
    assert {a.outcome for a in tries} == {OutcomeKind.ACCEPTED}
    assert max(r.received_at for r in live) - back_at < timedelta(seconds=5)
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("relay cannot be reached" in r.getMessage() for r in loud)
    # show tells how late each message was.
    live_stage = next(s for s in status.stages if s.stage.kind is StageKind.LIVE)
    assert live_stage.report.first_after is not None
    assert live_stage.report.first_after >= timedelta(seconds=1.5)


def live_id(status: Any) -> int:
    return next(s.stage.id for s in status.stages if s.stage.kind is StageKind.LIVE)


async def test_a_rate_limit_is_kept_by_the_relays_clock_and_no_limit_is_not_slowed(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    lists_dir: Path,
) -> None:
    write_big_list(lists_dir, "many", 40)
    write_big_list(lists_dir, "few", 5)
    with StandInRelay() as relay, open_app(make_settings(relay, smtp_rate=120)) as app:
        pack = queue(app, make_request(lists="few"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
    limited = sorted(r.received_at for r in relay.received if stage_of(r) == "notice")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(limited)]
    # 120 a minute is one every 0.5 s, whatever the number of connections. The first
    # message's time at the relay includes opening its connection, which a loaded
    # machine can stretch: its gap to the second may be shorter, never the spacing after.
    assert len(limited) == 5 and min(gaps[1:]) >= 0.45 and sum(gaps) >= 1.8, gaps

    with (
        StandInRelay() as relay,
        open_app(make_settings(relay, database=lists_dir / "b.db")) as app,
    ):
        pack = queue(app, make_request(lists="many"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
    unlimited = sorted(r.received_at for r in relay.received if stage_of(r) == "notice")
    assert len(unlimited) == 40
    # At the limit above, 40 would take 20 s: no limit means no waiting at all.
    assert unlimited[-1] - unlimited[0] < timedelta(seconds=3.0)


async def test_each_finished_stage_sends_one_report_to_the_contact(
    app_with_relay: App, relay: StandInRelay, make_request: Callable[..., Any]
) -> None:
    app = app_with_relay
    pack = queue(app, make_request(lift=at(datetime.now(UTC) + timedelta(seconds=1.5))))
    async with running(app):
        await wait_until(lambda: stages_closed(app, pack.id), within=10)
    sent = [r for r in relay.received if stage_of(r) == "report"]
    assert [r.rcpt_tos for r in sent] == [("ocu@example.org",), ("ocu@example.org",)]
    subjects = sorted(report.split("\n", 1)[0] for report in reports(relay))
    assert "notice wave 1: 3 sent, 0 failed" in subjects[1]
    assert "live: 3 sent, 0 failed" in subjects[0]
    assert all(s.state is StageState.DONE for s in app.store.stages(pack.id))


def test_kill_dash_nine_at_random_points_loses_no_one_and_repeats_only_messages_in_flight(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    lists_dir: Path,
    tmp_path: Path,
) -> None:
    crowd = write_big_list(lists_dir, "crowd", 500)
    seed = int(os.environ.get("KILL_TEST_SEED", "20220223"))
    kill_points = sorted(random.Random(seed).sample(range(40, 460), 3))
    connections = 4
    with StandInRelay(PacedHandler(0.005)) as relay:
        settings = make_settings(relay, smtp_connections=connections, lease_seconds=5)
        with open_app(settings) as app:
            pack = queue(app, make_request(lists="crowd"))
        env = {
            "EMBARGO_BOT_DATABASE": str(settings.database),
            "EMBARGO_BOT_RECIPIENTS_DIR": str(lists_dir),
            "EMBARGO_BOT_KEY": settings.key.get_secret_value() if settings.key else "",
            "EMBARGO_BOT_FROM": settings.sender,
            "EMBARGO_BOT_SMTP_HOST": relay.host,
            "EMBARGO_BOT_SMTP_PORT": str(relay.port),
            "EMBARGO_BOT_SMTP_SECURITY": "none",
            "EMBARGO_BOT_SMTP_CONNECTIONS": str(connections),
            "EMBARGO_BOT_REQUIRE_CLEARANCE": "false",
            "EMBARGO_BOT_POLL_INTERVAL": "0.1",
        }

        def notices() -> list[str]:
            return [r.rcpt_tos[0] for r in relay.received if stage_of(r) == "notice"]

        at_kill = []
        for point in kill_points:
            service = start_service(env, tmp_path, log=False)
            deadline = time.monotonic() + 20
            # Counting without parsing, so the kill lands close to its point.
            while len(relay.received) < point and time.monotonic() < deadline:
                time.sleep(0.001)
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=10)
            at_kill.append(len(notices()))
        service = start_service(env, tmp_path, log=False)
        try:
            deadline = time.monotonic() + 30
            while len(set(notices())) < 500 and time.monotonic() < deadline:
                time.sleep(0.05)
            with open_app(settings) as app:
                deadline = time.monotonic() + 10
                while not stage_closed(app, pack.id, StageKind.NOTICE):
                    assert time.monotonic() < deadline, "the stage never finished"
                    time.sleep(0.05)
                states = Counter(d.state for d in deliveries_of(app, pack.id, StageKind.NOTICE))
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=15)

    counts = Counter(notices())
    duplicates = sum(count - 1 for count in counts.values())
    print(
        f"\nkill -9 test (seed {seed}): 500 recipients, {connections} connections, kills after "
        f"{at_kill} messages; {len(counts)} distinct recipients received it, "
        f"{sum(counts.values())} messages in all, {duplicates} duplicate(s), "
        f"at most {connections} in flight per kill"
    )
    assert set(counts) == set(crowd), "nobody lost"
    assert duplicates <= len(kill_points) * connections, "only messages in flight repeated"
    assert states == Counter({DeliveryState.SENT: 500})


async def test_a_refused_login_is_named_as_such_once_and_the_settings_to_check(
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = {
        **FAST_RETRIES,
        "retry_for": "2s",
        "smtp_connections": 3,
        "smtp_username": "ocu",
        "smtp_password": "not-the-password",
    }
    relay = StandInRelay(logins={"ocu": "the-password"})
    with relay, open_app(make_settings(relay, **settings)) as app:
        pack = queue(app, make_request())
        with caplog.at_level(logging.WARNING, logger="embargo_bot"):
            async with running(app):
                await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        tries = [a for a in app.store.attempts(pack.id) if a.number == 1]

    assert relay.received == [] or all(stage_of(r) == "report" for r in relay.received)
    assert tries and all(a.code == 535 for a in tries)
    # Once for the stage, though three connections each met the refusal, and again after.
    said = [r.getMessage() for r in caplog.records if "notice wave 1: the relay" in r.getMessage()]
    login = [m for m in said if "the relay refused the login (535" in m]
    assert len(login) == 1, said
    assert "check EMBARGO_BOT_SMTP_USERNAME and EMBARGO_BOT_SMTP_PASSWORD" in login[0]
    assert not any("cannot be reached" in m for m in said), said
    assert "not-the-password" not in caplog.text


async def test_a_login_the_relay_takes_delivers(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    login = {"smtp_username": "ocu", "smtp_password": "the-password"}
    relay = StandInRelay(logins={"ocu": "the-password"})
    with relay, open_app(make_settings(relay, **login)) as app:
        pack = queue(app, make_request())
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
    assert partners(relay, StageKind.NOTICE) == Counter(EVERYONE)
