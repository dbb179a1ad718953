"""Delivery reports, auto-replies and hostile bytes, as the bounce mailbox holds them."""

from __future__ import annotations

import base64
import quopri

import pytest
from bounce_samples import (
    MALFORMED_NO_STATUS,
    MESSAGE_ID,
    OUT_OF_OFFICE,
    PACK,
    RETURN_PATH,
    exchange_report,
    malformed_no_action,
    original,
    postfix_delayed,
    postfix_report,
)
from bounce_samples import ORDINARY_MAIL as ORDINARY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embargo_bot.bounces.dsn import (
    MAX_TEXT,
    Action,
    DeliveryReport,
    MalformedReport,
    NotAReport,
    classify,
)


def report(raw: bytes) -> DeliveryReport:
    result = classify(raw)
    assert isinstance(result, DeliveryReport), result
    return result


def test_a_permanent_failure_from_postfix() -> None:
    got = report(postfix_report())
    (only,) = got.recipients
    assert only.final_recipient == "officer@partner.example"  # "rfc822;" stripped
    assert only.action is Action.FAILED
    assert only.status == "5.1.1"
    # Folded onto two lines by Postfix; one line here, without the "smtp;" type.
    assert only.diagnostic == (
        "550 5.1.1 <officer@partner.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert got.failures == (only,) and got.delays == ()
    assert got.original.message_id == MESSAGE_ID
    assert got.original.pack == PACK
    assert got.original.stage == "notice"
    assert got.envelope_recipients == (RETURN_PATH,)


def test_a_delayed_report_is_a_delay_not_a_failure() -> None:
    got = report(postfix_delayed())
    assert got.failures == ()
    (delay,) = got.delays
    assert delay.status == "4.4.1"
    assert "Connection timed out" in delay.diagnostic


def test_an_exchange_report_with_the_original_headers_only() -> None:
    got = report(exchange_report())
    (only,) = got.recipients
    assert only.final_recipient == "press.office@partner.example"
    assert only.status == "5.2.2"
    assert only.diagnostic.startswith("554 5.2.2 mailbox full; STOREDRV.Deliver.Exception")
    assert "\n" not in only.diagnostic
    assert got.original.message_id == MESSAGE_ID
    assert got.original.pack == PACK


def test_text_rfc822_headers_from_postfix() -> None:
    got = report(postfix_report(headers_only=True))
    assert got.original.message_id == MESSAGE_ID
    assert got.original.stage == "notice"


def test_multiple_recipients_each_with_their_own_action() -> None:
    got = report(
        postfix_report(
            recipients=(
                ("a@partner.example", "failed", "5.1.1", "smtp; 550 5.1.1 unknown user"),
                ("b@partner.example", "delayed", "4.2.2", "smtp; 452 4.2.2 over quota"),
                ("c@partner.example", "relayed", "2.0.0", "smtp; 250 2.0.0 ok"),
            )
        )
    )
    assert [(r.final_recipient, r.action) for r in got.recipients] == [
        ("a@partner.example", Action.FAILED),
        ("b@partner.example", Action.DELAYED),
        ("c@partner.example", Action.RELAYED),
    ]
    assert [r.final_recipient for r in got.failures] == ["a@partner.example"]


def test_the_verp_address_it_was_delivered_to() -> None:
    verp = "bounces+abcdefghijklmnop@gov.example"
    assert report(postfix_report(envelope_to=verp)).envelope_recipients == (verp,)
    assert report(exchange_report(envelope_to=verp)).envelope_recipients == (verp,)


def test_a_report_without_the_returned_message_still_counts() -> None:
    raw = postfix_report(returned="")
    got = report(raw)
    assert got.original.message_id is None and got.original.pack is None
    assert got.failures


def test_an_action_with_a_comment() -> None:
    raw = postfix_report().replace(b"Action: failed", b"Action: failed (bad mailbox)")
    assert report(raw).failures


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (OUT_OF_OFFICE, "text/plain"),  # Auto-Submitted: auto-replied, like bounces
        (ORDINARY, "multipart/alternative"),
        (
            postfix_report().replace(b"report-type=delivery-status", b"report-type=disposition"),
            "disposition",  # a read receipt (RFC 8098) is a report, not a delivery report
        ),
        (b"", "text/plain"),
    ],
)
def test_not_a_delivery_report(raw: bytes, why: str) -> None:
    result = classify(raw)
    assert isinstance(result, NotAReport)
    assert why in result.reason


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (MALFORMED_NO_STATUS, "without a message/delivery-status part"),
        (malformed_no_action(), "officer@partner.example: no Action"),
        (postfix_report().replace(b"Status: 5.1.1", b"Status: bounced"), "is not n.n.n"),
        (postfix_report().replace(b"Action: failed", b"Action: vanished"), "unknown Action"),
        (postfix_report().replace(b"Final-Recipient: rfc822; ", b"X-Gone: "), "Final-Recipient"),
        (
            postfix_report().split(b"Final-Recipient")[0] + b"\r\n--x--\r\n",
            "names no recipient",
        ),
    ],
)
def test_a_malformed_report_says_why_in_one_line(raw: bytes, why: str) -> None:
    result = classify(raw)
    assert isinstance(result, MalformedReport)
    assert why in result.reason
    assert "\n" not in result.reason


def test_control_characters_and_length_never_reach_the_diagnostic() -> None:
    nasty = "smtp; 550 " + "\x1b[31mred\x00\u2028X-Injected: yes " + "A" * 2000
    raw = postfix_report(recipients=(("x@partner.example", "failed", "5.0.0", nasty),))
    (only,) = report(raw).recipients
    assert len(only.diagnostic) <= MAX_TEXT
    assert all(c.isprintable() for c in only.diagnostic)


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_an_encoded_delivery_status_part(encoding: str) -> None:
    # RFC 2046 forbids encoding message/* parts; some gateways do it anyway.
    raw = postfix_report()
    head, rest = raw.split(b"Content-Type: message/delivery-status\r\n\r\n", 1)
    status, tail = rest.split(b"\r\n--4Q1x", 1)
    if encoding == "base64":
        encoded = base64.encodebytes(status).replace(b"\n", b"\r\n")
    else:
        encoded = quopri.encodestring(status, quotetabs=True)  # every space as =20
    raw = (
        head
        + b"Content-Type: message/delivery-status\r\n"
        + f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        + encoded
        + b"\r\n--4Q1x"
        + tail
    )
    (only,) = report(raw).failures
    assert only.final_recipient == "officer@partner.example"
    assert only.status == "5.1.1"


def test_a_truncated_report_still_gives_its_recipients() -> None:
    # The mailbox reads only the head of a large message (a returned PDF).
    raw = postfix_report()
    got = report(raw[: raw.index(b"Content-Description: Undelivered Message\r\n") + 60])
    assert got.failures


def test_a_non_ascii_header_in_a_returned_message() -> None:
    returned = original().replace("Subject: EMBARGOED", "Subject: EMBARGOED \u00e9\u00e8")
    raw = postfix_report(returned=returned).replace("\u00e9".encode(), b"\xff\xfe")
    assert report(raw).original.message_id == MESSAGE_ID


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_hostile_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(classify(raw), DeliveryReport | NotAReport | MalformedReport)


_SEED = postfix_report(
    recipients=(
        ("a@partner.example", "failed", "5.1.1", "smtp; 550 unknown"),
        ("b@partner.example", "delayed", "4.4.1", "smtp; 451 later"),
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_SEED)),
            st.integers(0, 40),
            st.binary(max_size=40)
            | st.sampled_from(
                [b"\r\n", b"\r\n\r\n", b";", b"=?utf-8?b?", b"--", b"\x00", b"\xff", b":"]
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_corrupted_reports_never_raise(edits: list[tuple[int, int, bytes]]) -> None:
    raw = _SEED
    for at, cut, insert in edits:
        raw = raw[:at] + insert + raw[at + cut :]
    result = classify(raw)
    assert isinstance(result, DeliveryReport | NotAReport | MalformedReport)
    if isinstance(result, DeliveryReport):
        for block in result.recipients:
            assert "@" in block.final_recipient
            assert all(c.isprintable() for c in block.final_recipient + block.diagnostic)
    else:
        assert "\n" not in result.reason
