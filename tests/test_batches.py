"""Capped relays: recipients in messages of up to N, To: an empty group, one reply each."""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from embargo_bot.delivery.batches import (
    Batch,
    PendingRecipient,
    RecipientReply,
    ReplyKind,
    count_messages,
    replies_after_all_refused,
    replies_after_message_failure,
    replies_after_sendmail,
    split_into_batches,
    still_pending,
)
from embargo_bot.delivery.outgoing import Outgoing, plan_messages
from embargo_bot.domain.packs import Delivery, DeliveryState, StageKind


def on(list_key: str, *names: str, alone: bool = False) -> list[PendingRecipient]:
    display = {"scot": "Police Scotland", "nca": "National Crime Agency"}.get(list_key, list_key)
    return [
        PendingRecipient(f"{name}@{list_key}.example", list_key, display, alone) for name in names
    ]


def shape(batches: tuple[Batch, ...]) -> list[tuple[str | None, list[str]]]:
    return [
        (batch.to_group, [r.address.split("@")[0] for r in batch.recipients]) for batch in batches
    ]


@pytest.mark.parametrize(
    ("pending", "most", "expected"),
    [
        ([], 50, []),
        # The default: one message per recipient, To: their own address, as before.
        (on("scot", "a", "b"), 1, [(None, ["a"]), (None, ["b"])]),
        (on("scot", "a", "b", "c"), 50, [("Police Scotland", ["a", "b", "c"])]),
        # Lists never share a message; order follows the first pending recipient.
        (
            on("scot", "a") + on("nca", "x") + on("scot", "b"),
            50,
            [("Police Scotland", ["a", "b"]), ("National Crime Agency", ["x"])],
        ),
        # Even chunks: 5 at 2 a message is 2 + 2 + 1; 5 at 4 is 3 + 2, not 4 + 1.
        (
            on("scot", "a", "b", "c", "d", "e"),
            2,
            [
                ("Police Scotland", ["a", "b"]),
                ("Police Scotland", ["c", "d"]),
                ("Police Scotland", ["e"]),
            ],
        ),
        (
            on("scot", "a", "b", "c", "d", "e"),
            4,
            [("Police Scotland", ["a", "b", "c"]), ("Police Scotland", ["d", "e"])],
        ),
        # Certificate holders and encrypted lists: a message each, To: their own address.
        (
            on("scot", "a") + on("scot", "cert", alone=True) + on("scot", "b"),
            50,
            [("Police Scotland", ["a", "b"]), (None, ["cert"])],
        ),
        (on("nca", "x", "y", alone=True), 50, [(None, ["x"]), (None, ["y"])]),
    ],
)
def test_split_into_batches(
    pending: list[PendingRecipient], most: int, expected: list[tuple[str | None, list[str]]]
) -> None:
    assert shape(split_into_batches(pending, most)) == expected


def test_150_partners_at_50_a_message_are_3_messages() -> None:
    pending = on("scot", *(f"p{i}" for i in range(150)))
    batches = split_into_batches(pending, 50)
    assert [len(batch.envelope) for batch in batches] == [50, 50, 50]
    assert count_messages(pending, 50) == 3
    assert count_messages(pending, 1) == 150


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        split_into_batches(on("scot", "a"), 0)
    with pytest.raises(ValueError, match="pending twice"):
        split_into_batches([*on("scot", "a"), PendingRecipient("A@scot.example", "x", "X")], 5)
    with pytest.raises(ValueError, match="no usable display name"):
        split_into_batches([PendingRecipient("a@b.example", "evil", "Evil\r\nBcc: x@y.example")], 5)


def test_to_is_an_empty_group_with_no_address_in_any_header() -> None:
    (batch,) = split_into_batches(on("scot", "a", "b"), 50)
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Home Office <embargo@gov.example>"
    message["To"] = batch.to_header()
    message["Subject"] = "OFFICIAL: the strategy is live"
    message.set_content("Live.")
    headers = message.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"\r\nTo: Police Scotland:;\r\n" in headers
    assert b"scot.example" not in headers


def test_a_display_name_that_needs_quoting_still_makes_a_valid_group() -> None:
    batch = split_into_batches(
        [PendingRecipient("a@x.example", "k", "Police, Scotland (North)")], 2
    )
    message = EmailMessage(policy=policy.SMTP)
    message["To"] = batch[0].to_header()
    assert message["To"] == '"Police, Scotland (North)":;'


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("Police Scotland", b"To: Police Scotland:;\r\n"),
        ("Police, Scotland (North)", b'To: "Police, Scotland (North)":;\r\n'),
        ("Heddlu Gogledd Cymru \u2013 Partneriaid", b"To: Heddlu Gogledd Cymru =?utf-8?"),
    ],
)
def test_the_header_line_written_directly_is_ascii_and_a_group(name: str, line: bytes) -> None:
    (batch,) = split_into_batches([PendingRecipient("a@x.example", "k", name)], 2)
    written = batch.to_header_line()
    assert written.startswith(line) and written.endswith(b"\r\n")
    parsed = email.message_from_bytes(written + b"\r\nbody", policy=policy.default)
    (group,) = parsed["To"].groups
    assert (group.display_name, group.addresses) == (name, ())


def test_a_lone_recipient_is_addressed_to_themselves() -> None:
    (batch,) = split_into_batches(on("scot", "cert", alone=True), 50)
    assert batch.to_header() == "cert@scot.example"


ENVELOPE = ("a@scot.example", "b@scot.example", "c@scot.example")


def test_replies_after_sendmail_give_each_rcpt_its_own_answer() -> None:
    replies = replies_after_sendmail(
        ENVELOPE,
        {"b@scot.example": (550, "5.1.1 no such user"), "c@scot.example": (452, "4.2.2 full")},
        "2.0.0 Ok: queued as 4F2",
    )
    assert replies == (
        RecipientReply("a@scot.example", ReplyKind.ACCEPTED, 250, "2.0.0 Ok: queued as 4F2"),
        RecipientReply("b@scot.example", ReplyKind.PERMANENT, 550, "5.1.1 no such user"),
        RecipientReply("c@scot.example", ReplyKind.TEMPORARY, 452, "4.2.2 full"),
    )
    (batch,) = split_into_batches(on("scot", "a", "b", "c"), 50)
    assert [r.address for r in still_pending(batch, replies)] == ["c@scot.example"]


def test_a_refusal_for_an_address_not_sent_is_an_error() -> None:
    with pytest.raises(ValueError, match="not in the envelope"):
        replies_after_sendmail(ENVELOPE, {"z@scot.example": (550, "no")}, "ok")


def test_all_refused_and_whole_message_failures() -> None:
    all_refused = replies_after_all_refused(
        ENVELOPE[:2], [("a@scot.example", 550, "no"), ("b@scot.example", 450, "later")]
    )
    assert [(r.kind, r.code) for r in all_refused] == [
        (ReplyKind.PERMANENT, 550),
        (ReplyKind.TEMPORARY, 450),
    ]
    failed = replies_after_message_failure(ENVELOPE, ReplyKind.TEMPORARY, None, "timed out")
    assert {r.kind for r in failed} == {ReplyKind.TEMPORARY} and len(failed) == 3
    with pytest.raises(ValueError, match="cannot be accepted"):
        replies_after_message_failure(ENVELOPE, ReplyKind.ACCEPTED, 250, "ok")


class RefusingHandler:
    """Refuses RCPT for addresses starting with 'bad' (550) or 'busy' (451)."""

    def __init__(self) -> None:
        self.envelopes: list[list[str]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("bad"):
            return "550 5.1.1 no such user"
        if address.startswith("busy"):
            return "451 4.3.0 try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(list(envelope.rcpt_tos))
        return "250 2.0.0 queued"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_reading_of_aiosmtplib_against_a_real_relay() -> None:
    handler = RefusingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        envelope = ["ok@scot.example", "bad@scot.example", "busy@scot.example"]
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=controller.port) as smtp:
            refused, data_reply = await smtp.sendmail(
                "embargo@gov.example", envelope, b"Subject: x\r\n\r\nbody\r\n"
            )
            replies = replies_after_sendmail(envelope, refused, data_reply)
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
                await smtp.sendmail("embargo@gov.example", envelope[1:], b"Subject: y\r\n\r\n.\r\n")
            everyone = replies_after_all_refused(
                envelope[1:], [(r.recipient, r.code, r.message) for r in caught.value.recipients]
            )
    finally:
        controller.stop()
    assert [(r.kind, r.code) for r in replies] == [
        (ReplyKind.ACCEPTED, 250),
        (ReplyKind.PERMANENT, 550),
        (ReplyKind.TEMPORARY, 451),
    ]
    assert replies[0].text == "2.0.0 queued"
    assert [(r.kind, r.code) for r in everyone] == [
        (ReplyKind.PERMANENT, 550),
        (ReplyKind.TEMPORARY, 451),
    ]
    assert handler.envelopes == [["ok@scot.example"]]


def fixed(email: str, list_key: str = "scot", **changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "stage_id": 1,
        "pack_id": "p",
        "kind": StageKind.LIVE,
        "email": email,
        "name": None,
        "list_key": list_key,
        "message_id": f"<{email}>",
        "state": DeliveryState.PENDING,
        "reply": None,
        "attempts": 0,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    values.update(changes)
    return Delivery(**values)


NAMES = {"scot": "Police Scotland", "nca": "National Crime Agency"}


def planned(messages: list[Outgoing]) -> list[tuple[str, str | None, list[str]]]:
    return [(m.message_id, m.to_group, [d.email for d in m.deliveries]) for m in messages]


def test_a_message_takes_its_first_recipients_message_id_and_a_lone_one_keeps_its_own() -> None:
    pending = [fixed("a"), fixed("x", "nca"), fixed("b"), fixed("c", certificate="c.pem")]
    assert planned(plan_messages(pending, StageKind.LIVE, 50, NAMES)) == [
        ("<a>", "Police Scotland", ["a", "b"]),
        ("<x>", "National Crime Agency", ["x"]),
        ("<c>", None, ["c"]),
    ]
    # One a message, or a stage for one person: exactly as before batches.
    assert planned(plan_messages(pending, StageKind.LIVE, 1, NAMES)) == [
        (f"<{e}>", None, [e]) for e in ("a", "x", "b", "c")
    ]
    assert planned(plan_messages([fixed("a"), fixed("b")], StageKind.REPORT, 50, NAMES)) == [
        ("<a>", None, ["a"]),
        ("<b>", None, ["b"]),
    ]


def test_after_a_restart_a_message_already_bound_or_tried_goes_again_as_it_was() -> None:
    pending = [
        fixed("a", message_id="<a>"),  # bound with c before a crash, never answered
        fixed("b", message_id="<z>", attempts=1),  # what a 451 left of message <z>
        fixed("c", message_id="<a>"),
        fixed("d"),  # never tried: planned afresh
        fixed("e"),
    ]
    assert planned(plan_messages(pending, StageKind.LIVE, 50, {})) == [
        ("<a>", "scot", ["a", "c"]),  # a list no longer readable is named by its key
        ("<z>", "scot", ["b"]),
        ("<d>", "scot", ["d", "e"]),
    ]


def test_a_retry_carries_only_the_named_recipients_in_the_same_message() -> None:
    (message,) = plan_messages([fixed("a"), fixed("b"), fixed("c")], StageKind.LIVE, 50, NAMES)
    assert message.needs_binding
    again = message.carrying(["c"])
    assert (again.message_id, again.to_group, again.envelope) == ("<a>", "Police Scotland", ("c",))
    assert not again.needs_binding and again.first.message_id == "<a>"
