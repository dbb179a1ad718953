"""Which delivery a report is about: by VERP token, Message-ID, or recipient and pack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from bounce_samples import MESSAGE_ID, PACK, RETURN_PATH, exchange_report, original, postfix_report

from embargo_bot.bounces.dsn import Action, DeliveryReport, classify
from embargo_bot.bounces.matching import (
    DeliveryLookup,
    DeliveryRef,
    Matched,
    Unmatched,
    Via,
    match_report,
    normalise_message_id,
)
from embargo_bot.bounces.verp import new_token, verp_address

OFFICER = "officer@partner.example"
NOTICE = DeliveryRef(1, PACK, "notice", OFFICER)
LIVE = DeliveryRef(2, PACK, "live", OFFICER)
OTHER_PACK = DeliveryRef(3, "2026-budget", "notice", OFFICER)


@dataclass
class Store:
    """The store's answers, as plain data: what the real queries would return."""

    tokens: dict[str, DeliveryRef] = field(default_factory=dict)
    message_ids: dict[str, list[DeliveryRef]] = field(default_factory=dict)
    deliveries: list[DeliveryRef] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def by_verp_token(self, token: str) -> DeliveryRef | None:
        self.asked.append("token")
        return self.tokens.get(token)

    def by_message_id(self, message_id: str) -> Sequence[DeliveryRef]:
        self.asked.append("message-id")
        return self.message_ids.get(message_id, [])

    def by_recipient(self, recipient: str, pack: str) -> Sequence[DeliveryRef]:
        self.asked.append("recipient")
        return [
            d
            for d in self.deliveries
            if d.recipient.casefold() == recipient.casefold() and d.pack == pack
        ]


def parsed(raw: bytes) -> DeliveryReport:
    result = classify(raw)
    assert isinstance(result, DeliveryReport), result
    return result


def only(decisions: tuple[Matched | Unmatched, ...]) -> Matched | Unmatched:
    assert len(decisions) == 1, decisions
    return decisions[0]


def test_the_store_fake_is_a_lookup() -> None:
    lookup: DeliveryLookup = Store()
    assert lookup.by_verp_token("x") is None


def test_by_verp_token_first() -> None:
    token = new_token()
    store = Store(tokens={token: NOTICE}, message_ids={MESSAGE_ID: [LIVE]})
    report = parsed(postfix_report(envelope_to=verp_address(RETURN_PATH, token)))
    decision = only(match_report(report, store, return_path=RETURN_PATH))
    assert isinstance(decision, Matched)
    assert decision.delivery == NOTICE and decision.via is Via.VERP_TOKEN
    assert decision.status.action is Action.FAILED and decision.status.status == "5.1.1"
    assert store.asked == ["token"]


def test_an_unknown_token_is_a_message_the_store_never_sent() -> None:
    store = Store(message_ids={MESSAGE_ID: [NOTICE]}, deliveries=[NOTICE])
    report = parsed(postfix_report(envelope_to=verp_address(RETURN_PATH, new_token())))
    decision = only(match_report(report, store, return_path=RETURN_PATH))
    assert isinstance(decision, Unmatched)
    assert "VERP token" in decision.reason


def test_by_the_token_returned_as_the_envelope_id() -> None:
    token = new_token()
    first_line = b"Reporting-MTA: dns; relay.gov.example\r\n"
    envid = f"Original-Envelope-Id: {token.upper()}\r\n".encode()
    raw = postfix_report(returned=original(message_id=None)).replace(first_line, first_line + envid)
    report = parsed(raw)
    assert report.envelope_id == token.upper()
    decision = only(match_report(report, Store(tokens={token: NOTICE}), return_path=None))
    assert isinstance(decision, Matched) and decision.via is Via.VERP_TOKEN


def test_tokens_are_not_looked_for_when_verp_is_off() -> None:
    token = new_token()
    store = Store(tokens={token: LIVE}, message_ids={MESSAGE_ID: [NOTICE]})
    report = parsed(postfix_report(envelope_to=verp_address(RETURN_PATH, token)))
    decision = only(match_report(report, store, return_path=None))
    assert isinstance(decision, Matched) and decision.delivery == NOTICE
    assert decision.via is Via.MESSAGE_ID


def test_a_token_whose_pack_disagrees_with_the_returned_headers_matches_nothing() -> None:
    token = new_token()
    store = Store(tokens={token: OTHER_PACK})
    report = parsed(postfix_report(envelope_to=verp_address(RETURN_PATH, token)))
    decision = only(match_report(report, store, return_path=RETURN_PATH))
    assert isinstance(decision, Unmatched)
    assert "returns pack" in decision.reason


def test_by_message_id_from_exchange_headers() -> None:
    press = DeliveryRef(7, PACK, "notice", "press.office@partner.example")
    store = Store(message_ids={MESSAGE_ID: [press]})
    decision = only(match_report(parsed(exchange_report()), store, return_path=RETURN_PATH))
    assert isinstance(decision, Matched) and decision.delivery == press
    assert decision.via is Via.MESSAGE_ID


def test_by_message_id_even_when_the_partner_forwarded_it() -> None:
    store = Store(message_ids={MESSAGE_ID: [NOTICE]})
    raw = postfix_report(
        recipients=(("new.desk@elsewhere.example", "failed", "5.1.1", "smtp; 550 unknown"),)
    )
    decision = only(match_report(parsed(raw), store, return_path=None))
    assert isinstance(decision, Matched) and decision.delivery == NOTICE


def test_a_shared_message_id_needs_the_recipient() -> None:
    other = DeliveryRef(9, PACK, "notice", "other@partner.example")
    store = Store(message_ids={MESSAGE_ID: [other, NOTICE]})
    decision = only(match_report(parsed(postfix_report()), store, return_path=None))
    assert isinstance(decision, Matched) and decision.delivery == NOTICE
    raw = postfix_report(recipients=(("third@partner.example", "failed", "5.1.1", "x"),))
    assert isinstance(only(match_report(parsed(raw), store, return_path=None)), Unmatched)


def test_an_unknown_message_id_is_not_rescued_by_the_pack_header() -> None:
    store = Store(deliveries=[NOTICE])
    raw = postfix_report(returned=original(message_id="<never-sent@gov.example>"))
    decision = only(match_report(parsed(raw), store, return_path=RETURN_PATH))
    assert isinstance(decision, Unmatched)
    assert "not one the store sent" in decision.reason
    assert "recipient" not in store.asked


def test_by_recipient_pack_and_stage_without_a_message_id() -> None:
    store = Store(deliveries=[NOTICE, LIVE, OTHER_PACK])
    raw = postfix_report(returned=original(message_id=None, stage="live"))
    decision = only(match_report(parsed(raw), store, return_path=None))
    assert isinstance(decision, Matched) and decision.delivery == LIVE
    assert decision.via is Via.RECIPIENT_AND_PACK


def test_by_recipient_and_pack_is_ambiguous_without_the_stage() -> None:
    store = Store(deliveries=[NOTICE, LIVE])
    raw = postfix_report(returned=original(message_id=None, stage=None))
    decision = only(match_report(parsed(raw), store, return_path=None))
    assert isinstance(decision, Unmatched) and "several deliveries" in decision.reason
    store = Store(deliveries=[NOTICE])
    decision = only(match_report(parsed(raw), store, return_path=None))
    assert isinstance(decision, Matched) and decision.delivery == NOTICE


def test_a_recipient_alone_matches_nothing() -> None:
    # The partner may be on every pack: no guessing which one bounced.
    store = Store(deliveries=[NOTICE, OTHER_PACK])
    raw = postfix_report(returned=original(message_id=None, pack=None, stage=None))
    decision = only(match_report(parsed(raw), store, return_path=RETURN_PATH))
    assert isinstance(decision, Unmatched)
    assert "no VERP token, Message-ID or X-Embargo-Pack" in decision.reason
    assert store.asked == []


def test_a_report_for_a_message_the_store_never_sent() -> None:
    store = Store()
    decision = only(match_report(parsed(postfix_report()), store, return_path=RETURN_PATH))
    assert isinstance(decision, Unmatched)


def test_several_recipients_by_pack_each_their_own_delivery() -> None:
    a = DeliveryRef(11, PACK, "notice", "a@partner.example")
    b = DeliveryRef(12, PACK, "notice", "b@partner.example")
    raw = postfix_report(
        returned=original(message_id=None),
        recipients=(
            ("a@partner.example", "failed", "5.1.1", "smtp; 550 unknown"),
            ("B@Partner.example", "delayed", "4.4.1", "smtp; 451 later"),
            ("c@partner.example", "failed", "5.1.1", "smtp; 550 unknown"),
            ("a@partner.example", "delivered", "2.0.0", "smtp; 250 ok"),
        ),
    )
    decisions = match_report(parsed(raw), Store(deliveries=[a, b]), return_path=None)
    matched = {d.delivery.delivery_id: d.status.action for d in decisions if isinstance(d, Matched)}
    assert matched == {11: Action.FAILED, 12: Action.DELAYED}
    unmatched = [d.status.final_recipient for d in decisions if isinstance(d, Unmatched)]
    assert unmatched == ["c@partner.example"]


def test_one_delivery_once_and_the_failure_wins_over_a_delay() -> None:
    token = new_token()
    raw = postfix_report(
        envelope_to=verp_address(RETURN_PATH, token),
        recipients=(
            ("alias1@partner.example", "delayed", "4.4.1", "smtp; 451 later"),
            ("alias2@partner.example", "failed", "5.2.2", "smtp; 552 full"),
        ),
    )
    decision = only(
        match_report(parsed(raw), Store(tokens={token: NOTICE}), return_path=RETURN_PATH)
    )
    assert isinstance(decision, Matched) and decision.status.status == "5.2.2"


def test_delivered_and_relayed_change_nothing() -> None:
    raw = postfix_report(recipients=((OFFICER, "relayed", "2.0.0", "smtp; 250 ok"),))
    assert (
        match_report(parsed(raw), Store(message_ids={MESSAGE_ID: [NOTICE]}), return_path=None) == ()
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("<a@b.example>", "<a@b.example>"),
        (" a@b.example ", "<a@b.example>"),
        ("<>", None),
        ("", None),
        (None, None),
        ("<a b@c>", None),
    ],
)
def test_message_ids_as_the_store_writes_them(given: str | None, expected: str | None) -> None:
    assert normalise_message_id(given) == expected
