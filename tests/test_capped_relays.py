"""Capped relays: several envelope recipients a message, each with their own outcome.

A real relay on 127.0.0.1 that refuses some RCPTs, and one that keeps a cap
of 30 messages a minute as Microsoft 365 does for one mailbox.
"""

from __future__ import annotations

import email
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

from conftest import (
    at,
    deliveries_of,
    queue,
    running,
    stage_closed,
    stages_closed,
    wait_until,
    write_big_list,
)
from test_smime import Pki, pki  # noqa: F401 - the test PKI fixture

from embargo_bot.app import open_app
from embargo_bot.devtools.standin_relay import CapturingHandler, Received, StandInRelay
from embargo_bot.domain.outcomes import OutcomeKind
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.officials.previews import preview
from embargo_bot.officials.status import pack_status
from embargo_bot.settings import Settings

FAST_RETRIES = {"retry_backoff": "0.1s", "retry_for": "20s", "smtp_timeout": 2}


def parsed(item: Received) -> email.message.EmailMessage:
    message = email.message_from_bytes(item.data, policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def of_stage(received: list[Received], kind: StageKind) -> list[Received]:
    return [item for item in received if parsed(item)["X-Embargo-Stage"] == kind.value]


def header_block(item: Received) -> bytes:
    return item.data.split(b"\r\n\r\n", 1)[0]


class RcptHandler(CapturingHandler):
    """Refuses chosen RCPTs: some once with 451, some for good with 550."""

    def __init__(self, *, busy: set[str], refuse: set[str]) -> None:
        super().__init__()
        self.busy = set(busy)
        self.refuse = refuse
        self.rcpts: Counter[str] = Counter()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        self.rcpts[address] += 1
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.busy:
            self.busy.discard(address)
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_one_refused_rcpt_fails_alone_and_a_451_is_retried_alone_as_the_same_message(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any], lists_dir: Path
) -> None:
    partners = write_big_list(lists_dir, "scot", 6)
    bad, busy = partners[1], partners[4]
    handler = RcptHandler(busy={busy}, refuse={bad})
    relay = StandInRelay(handler)
    settings = make_settings(relay, **FAST_RETRIES, smtp_max_recipients=50)
    with relay, open_app(settings) as app:
        pack = queue(app, make_request(lists="scot"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.REPORT))
        states = {d.email: d for d in deliveries_of(app, pack.id, StageKind.NOTICE)}
        tries = Counter(a.email for a in app.store.attempts(pack.id))
        outcomes = {
            a.email: [
                (x.outcome, x.code) for x in app.store.attempts(pack.id) if x.email == a.email
            ]
            for a in app.store.attempts(pack.id)
        }

    first, retry = of_stage(relay.received, StageKind.NOTICE)
    # The first message carried everyone the relay took; the retry only the one it deferred.
    assert set(first.rcpt_tos) == set(partners) - {bad, busy}
    assert retry.rcpt_tos == (busy,)
    # Counted at the relay: each RCPT offered once, but the deferred one twice.
    offered = Counter({a: n for a, n in handler.rcpts.items() if a in partners})
    assert offered == Counter({**dict.fromkeys(partners, 1), busy: 2})
    # The retry is the same message, byte for byte: the same Message-ID, Date and To.
    assert retry.data == first.data
    assert parsed(first)["To"] == "Scot:;"
    assert outcomes[bad] == [(OutcomeKind.PERMANENT, 550)]
    assert outcomes[busy] == [(OutcomeKind.TEMPORARY, 451), (OutcomeKind.ACCEPTED, 250)]
    assert all(tries[p] == 1 for p in partners if p != busy)
    assert states[bad].state is DeliveryState.FAILED and "User unknown" in (states[bad].reply or "")
    assert {states[p].state for p in partners if p != bad} == {DeliveryState.SENT}
    # Each delivery records the Message-ID of the message it went in: all of them one.
    assert {d.message_id for d in states.values()} == {parsed(first)["Message-ID"]}
    # The delivery report counts recipients, each with their own reason.
    (report,) = of_stage(relay.received, StageKind.REPORT)
    text = parsed(report).get_body(("plain",))
    assert text is not None
    assert "5 sent, 1 failed" in text.get_content() and bad in text.get_content()


async def test_no_partner_address_in_any_header_and_one_delivery_per_address_across_lists(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    # alpha and beta both list shared@alpha.example (in different case).
    relay = StandInRelay()
    settings = make_settings(relay, smtp_max_recipients=10)
    lift = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    with relay, open_app(settings) as app:
        pack = queue(app, make_request(lift=at(lift)))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.LIVE), within=15)
        notices = deliveries_of(app, pack.id, StageKind.NOTICE)
        lives = deliveries_of(app, pack.id, StageKind.LIVE)

    everyone = {"one@alpha.example", "shared@alpha.example", "one@beta.example"}
    for kind, fixed in ((StageKind.NOTICE, notices), (StageKind.LIVE, lives)):
        assert sorted(d.email.lower() for d in fixed) == sorted(everyone), kind
        sent = of_stage(relay.received, kind)
        # A message per list: Alpha Agency's two, Beta Agency's one left after de-duplication.
        assert sorted(parsed(item)["To"] for item in sent) == ["Alpha Agency:;", "Beta Agency:;"]
        assert Counter(r.lower() for item in sent for r in item.rcpt_tos) == Counter(everyone)
        assert len({parsed(item)["Message-ID"] for item in sent}) == 2
    for item in relay.received:
        headers = header_block(item).lower()
        assert b"alpha.example" not in headers and b"beta.example" not in headers, headers


async def test_certificate_holders_and_encrypted_lists_get_a_message_of_their_own(
    pki: Pki,  # noqa: F811
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    lists_dir: Path,
) -> None:
    (lists_dir / "secure.yaml").write_text(
        "name: Police (encrypted)\nallowed_domains: [police.example]\n"
        "max_classification: OFFICIAL-SENSITIVE\nrequire_encryption: true\nrecipients:\n"
        f"  - email: comms@police.example\n    smime_certificate: {pki['comms.pem']}\n"
        f"  - email: desk@police.example\n    smime_certificate: {pki['legacy.pem']}\n",
        encoding="utf-8",
    )
    (lists_dir / "mixed.yaml").write_text(
        "name: Police press\nallowed_domains: [police.example]\n"
        "max_classification: OFFICIAL-SENSITIVE\nrecipients:\n"
        "  - email: news@police.example\n  - email: office@police.example\n"
        f"  - email: press@police.example\n    smime_certificate: {pki['other.pem']}\n",
        encoding="utf-8",
    )
    relay = StandInRelay()
    settings = make_settings(relay, smtp_max_recipients=50)
    with relay, open_app(settings) as app:
        pack = queue(app, make_request(lists="secure,mixed"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))

    by_envelope = {item.rcpt_tos: item for item in of_stage(relay.received, StageKind.NOTICE)}
    assert set(by_envelope) == {
        ("comms@police.example",),
        ("desk@police.example",),
        ("press@police.example",),
        ("news@police.example", "office@police.example"),
    }
    for alone in ("comms", "desk", "press"):
        message = parsed(by_envelope[(f"{alone}@police.example",)])
        assert message["To"] == f"{alone}@police.example"
        assert message.get_content_type() == "application/pkcs7-mime"
    shared = parsed(by_envelope[("news@police.example", "office@police.example")])
    assert shared["To"] == "Police press:;"
    assert shared.get_content_type() != "application/pkcs7-mime"


async def test_at_one_recipient_a_message_every_message_is_as_before(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any]
) -> None:
    relay = StandInRelay()
    settings = make_settings(relay)
    assert settings.smtp_max_recipients == 1
    with relay, open_app(settings) as app:
        pack = queue(app, make_request())
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        fixed = {d.email: d.message_id for d in deliveries_of(app, pack.id, StageKind.NOTICE)}

    sent = of_stage(relay.received, StageKind.NOTICE)
    assert len(sent) == 3 and all(len(item.rcpt_tos) == 1 for item in sent)
    for item in sent:
        message = parsed(item)
        assert message["To"].addresses[0].addr_spec == item.rcpt_tos[0]
        assert message["Message-ID"] == fixed[item.rcpt_tos[0]]
    assert len(set(fixed.values())) == 3


class CappedHandler(CapturingHandler):
    """A relay capped at ``per_minute`` messages a minute: over it, 451 at MAIL FROM."""

    def __init__(self, per_minute: int) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.taken: list[float] = []
        self.refused = 0
        self._cap_lock = threading.Lock()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        now = time.monotonic()
        with self._cap_lock:
            recent = [t for t in self.taken if now - t < 60]
            if len(recent) >= self.per_minute:
                self.refused += 1
                return "451 4.7.0 SubmissionQuotaExceeded: too many messages a minute"
            self.taken.append(now)
        envelope.mail_from = address
        return "250 OK"


async def test_150_partners_behind_a_relay_capped_at_30_a_minute_all_have_it_within_10s(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any], lists_dir: Path
) -> None:
    partners = write_big_list(lists_dir, "partners", 150)
    handler = CappedHandler(per_minute=30)
    relay = StandInRelay(handler)
    settings = make_settings(relay, smtp_rate=30, smtp_max_recipients=50)
    # Time for the notice (3 messages, 2 s apart) and its report to go first.
    lift = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    with relay, open_app(settings) as app:
        pack = queue(app, make_request(lists="partners", lift=at(lift)))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.LIVE), within=30)
        live_states = {d.state for d in deliveries_of(app, pack.id, StageKind.LIVE)}
        takes = {s.stage.kind: s.takes for s in pack_status(app, pack.id).stages}

    live = of_stage(relay.received, StageKind.LIVE)
    assert sorted(len(item.rcpt_tos) for item in live) == [50, 50, 50]
    assert Counter(r for item in live for r in item.rcpt_tos) == Counter(partners)
    assert live_states == {DeliveryState.SENT}
    last = max(item.received_at for item in live) - lift
    # 3 messages at 30 a minute are 2 s apart: about 4 s, well inside the target of 10 s.
    assert last < timedelta(seconds=10), last
    assert min(item.received_at for item in live) >= lift, "never early"
    assert handler.refused == 0, "the service kept under the relay's cap"
    # show's estimate counts messages: 3 at 30 a minute.
    assert takes[StageKind.LIVE] == timedelta(seconds=6)


class DroppingOnce(RcptHandler):
    """Also drops the connection in the middle of the first DATA: no reply for anyone."""

    def __init__(self, *, busy: set[str]) -> None:
        super().__init__(busy=busy, refuse=set())
        self.dropped: bytes = b""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.dropped:
            self.dropped = bytes(envelope.original_content or envelope.content)
            server.transport.close()
            return "451 4.3.0 never seen: the connection is already closed"
        return await super().handle_DATA(server, session, envelope)


async def test_a_message_dropped_mid_data_goes_again_whole_and_each_partner_gets_it_once(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any], lists_dir: Path
) -> None:
    partners = write_big_list(lists_dir, "scot", 5)
    handler = DroppingOnce(busy=set())
    relay = StandInRelay(handler)
    with relay, open_app(make_settings(relay, **FAST_RETRIES, smtp_max_recipients=50)) as app:
        pack = queue(app, make_request(lists="scot"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
        tries = Counter(a.outcome for a in app.store.attempts(pack.id) if a.email in partners)

    (sent,) = of_stage(relay.received, StageKind.NOTICE)
    assert sorted(sent.rcpt_tos) == sorted(partners)
    assert sent.data == handler.dropped, "the same message, byte for byte"
    assert tries == Counter({OutcomeKind.TEMPORARY: 5, OutcomeKind.ACCEPTED: 5})


async def test_after_a_restart_the_deferred_recipient_gets_the_same_message_alone(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any], lists_dir: Path
) -> None:
    partners = write_big_list(lists_dir, "scot", 4)
    busy = partners[2]
    handler = RcptHandler(busy={busy}, refuse=set())
    relay = StandInRelay(handler)
    retries = {**FAST_RETRIES, "retry_backoff": "2s"}
    with relay, open_app(make_settings(relay, **retries, smtp_max_recipients=50)) as app:
        pack = queue(app, make_request(lists="scot"))
        async with running(app):
            await wait_until(lambda: len(of_stage(relay.received, StageKind.NOTICE)) == 1)
        waiting = deliveries_of(app, pack.id, StageKind.NOTICE, DeliveryState.PENDING)
        assert [d.email for d in waiting] == [busy]
        async with running(app):  # a new run: the stage is planned again from the store
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))

    first, retry = of_stage(relay.received, StageKind.NOTICE)
    assert retry.rcpt_tos == (busy,) and retry.data == first.data
    assert Counter(r for item in (first, retry) for r in item.rcpt_tos) == Counter(partners)


async def test_preview_is_byte_for_byte_the_shared_message_each_partner_is_in(
    make_settings: Callable[..., Settings], make_request: Callable[..., Any], tmp_path: Path
) -> None:
    relay = StandInRelay()
    settings = make_settings(relay, smtp_max_recipients=10)
    lift = datetime.now(UTC) + timedelta(seconds=3)
    with relay, open_app(settings) as app:
        pack = queue(app, make_request(lift=at(lift)))
        before = preview(app, pack.id, [StageKind.NOTICE], tmp_path / "before")
        async with running(app):
            await wait_until(lambda: stages_closed(app, pack.id), within=15)
        after = preview(app, pack.id, list(StageKind), tmp_path / "after")

    sent = {
        (rcpt, item.data)
        for item in relay.received
        if b"X-Embargo-Stage: report" not in item.data
        for rcpt in item.rcpt_tos
    }
    assert {(f.recipient, f.path.read_bytes()) for f in after} == sent
    # Before it is sent: each file already says To: the list, not the partner.
    assert sorted(parsed_file(f.path)["To"] for f in before) == [
        "Alpha Agency:;",
        "Alpha Agency:;",
        "Beta Agency:;",
    ]


def parsed_file(path: Path) -> email.message.EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message
