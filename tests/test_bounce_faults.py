"""The bounce mailbox failing: down, refusing the login, silent, or hostile.

Each is logged with its reason and tried again after a growing pause; none of
them holds up a stage, the lift or the service's stop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import at, queue, running, wait_until
from servers.dovecot import free_port
from test_bounce_service import imap_settings, stage_of

from embargo_bot.app import open_app
from embargo_bot.bounces.mailbox import MailboxSettings
from embargo_bot.bounces.service import BounceReader, BounceReading
from embargo_bot.devtools.standin_relay import StandInRelay
from embargo_bot.settings import Settings
from embargo_bot.store import Store

if TYPE_CHECKING:
    from servers.dovecot import ImapUser


class SilentServer:
    """Accepts IMAP connections and never says a word: a mailbox too slow to answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


class EchoingServer:
    """Greets, then answers LOGIN by quoting it back in a BYE: a hostile or broken server."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                stream.write(b"* OK IMAP4rev1 ready\r\n")
                stream.flush()
                for line in stream:
                    tag, _, command = line.rstrip(b"\r\n").partition(b" ")
                    if command.upper() == b"CAPABILITY":
                        stream.write(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                        stream.flush()
                        continue
                    stream.write(b"* BYE not accepted: " + command + b"\r\n")
                    stream.flush()
                    break

    def close(self) -> None:
        self.listener.close()


def reader_for(mailbox: MailboxSettings, tmp_path: Path, poll: float = 0.1) -> BounceReader:
    return BounceReader(
        BounceReading(
            mailbox, None, poll, lambda: Store.open(tmp_path / "s.db"), lambda: datetime.now(UTC)
        )
    )


@pytest.mark.parametrize("fault", ["down", "login refused"])
async def test_a_failing_mailbox_is_logged_and_the_live_email_goes_at_the_lift(
    fault: str,
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    imap_user: ImapUser,
    make_request: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = (
        {"bounce_imap_port": free_port()}
        if fault == "down"
        else {"bounce_imap_password": "not-the-password"}
    )
    settings = make_settings(relay, **imap_settings(imap_user, **broken))
    caplog.set_level(logging.INFO, logger="embargo_bot")
    now = datetime.now(UTC)
    lift = now + timedelta(seconds=3)
    with open_app(settings) as app:
        queue(app, make_request(lists="alpha", lift=at(lift)))
        async with running(app):
            await wait_until(lambda: any(stage_of(r) == "live" for r in relay.received), within=15)
    live = [r for r in relay.received if stage_of(r) == "live"]
    assert {a for r in live for a in r.rcpt_tos} == {"one@alpha.example", "shared@alpha.example"}
    assert min(r.received_at for r in live) >= lift
    assert max(r.received_at for r in live) - lift < timedelta(seconds=3)
    words = [r.getMessage() for r in caplog.records if "bounce mailbox not read" in r.getMessage()]
    expected = "connection refused" if fault == "down" else "login refused"
    assert words and all(expected in w for w in words), words
    assert all("trying again in" in w for w in words)
    assert len(words) < 10  # backing off, not hammering
    text = caplog.text
    assert imap_user.password not in text and "not-the-password" not in text


async def test_a_mailbox_that_never_answers_holds_up_neither_the_lift_nor_the_stop(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
) -> None:
    silent = SilentServer()
    mailbox = {
        "bounce_imap_host": "127.0.0.1",
        "bounce_imap_port": silent.port,
        "bounce_imap_username": "bounces",
        "bounce_imap_password": "never-asked-for",
        "bounce_imap_security": "none",
        "bounce_poll": 0.2,
    }
    lift = datetime.now(UTC) + timedelta(seconds=3)
    try:
        with open_app(make_settings(relay, **mailbox)) as app:
            queue(app, make_request(lists="alpha", lift=at(lift)))
            async with running(app):
                # The reader is connected, waiting for a greeting that never comes
                # (for the IMAP timeout, 30 s), while the stages go on.
                await wait_until(lambda: bool(silent.held))
                await wait_until(
                    lambda: sum(stage_of(r) == "live" for r in relay.received) == 2, within=15
                )
                stopping = time.monotonic()
            stopped_in = time.monotonic() - stopping
    finally:
        silent.close()
    live = [r for r in relay.received if stage_of(r) == "live"]
    assert min(r.received_at for r in live) >= lift
    assert max(r.received_at for r in live) - lift < timedelta(seconds=3)
    assert stopped_in < 5  # the read in progress is left, not waited for


async def test_a_slow_mailbox_times_out_and_backs_off(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    silent = SilentServer()
    try:
        mailbox = MailboxSettings("127.0.0.1", silent.port, "u", "secret-pw", "none", timeout=0.3)
        reader = reader_for(mailbox, tmp_path)
        stop = asyncio.Event()
        caplog.set_level(logging.WARNING, logger="embargo_bot.bounces")
        task = asyncio.create_task(reader.run(stop))
        await wait_until(lambda: reader.failures >= 2, within=10)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        silent.close()
    words = [r.getMessage() for r in caplog.records]
    assert words[0].startswith(f"bounce mailbox not read: IMAP 127.0.0.1:{silent.port}: timed out")
    assert "trying again in 0.1s" in words[0] and "trying again in 0.2s" in words[1]
    assert "secret-pw" not in caplog.text


async def test_a_server_that_repeats_the_password_never_gets_it_logged(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    password = "Echo-Secret-Sesame-9"
    echoing = EchoingServer()
    try:
        mailbox = MailboxSettings("127.0.0.1", echoing.port, "bounces", password, "none", timeout=5)
        reader = reader_for(mailbox, tmp_path, poll=0.05)
        stop = asyncio.Event()
        caplog.set_level(logging.INFO, logger="embargo_bot.bounces")
        task = asyncio.create_task(reader.run(stop))
        await wait_until(lambda: reader.failures >= 2, within=10)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        echoing.close()
    words = [r.getMessage() for r in caplog.records if "not read" in r.getMessage()]
    assert words and all("connection dropped by the server" in w for w in words), words
    assert all("LOGIN bounces" in w and "***" in w for w in words), words
    assert password not in caplog.text
