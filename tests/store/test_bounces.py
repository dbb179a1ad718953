"""Bounces: finding a delivery by token, Message-ID or address, and applying a report once."""

from __future__ import annotations

from embargo_bot.domain.bounces import BounceNote, ServerReport
from embargo_bot.domain.packs import DeliveryState, StageKind, StageState
from embargo_bot.store import Store

from .builders import ACCEPTED, T0, a_pack, add, minutes, recipients, send, stage_id
from .conftest import OpenStore

EMAILS = ["one@alpha.example", "Two@Alpha.example"]


def sent_notice(store: Store, pack_id: str = "pack-1") -> int:
    pack = add(store, a_pack(pack_id))
    notice = stage_id(store, pack.id, StageKind.NOTICE)
    send(store, notice, EMAILS)
    return notice


def failed(notice: int, email: str = "one@alpha.example") -> BounceNote:
    return BounceNote(notice, email, True, "5.1.1", "550 5.1.1 User unknown")


def test_every_delivery_has_its_own_token_and_lookups_find_it(store: Store) -> None:
    notice = sent_notice(store)
    one, two = store.deliveries("pack-1", stage_id=notice)
    assert one.verp_token and two.verp_token and one.verp_token != two.verp_token
    found = store.delivery_by_verp_token(one.verp_token)
    assert found is not None
    assert (found.stage_id, found.pack_id, found.kind, found.email) == (
        notice,
        "pack-1",
        "notice",
        "one@alpha.example",
    )
    assert store.delivery_by_verp_token("a" * 16) is None
    assert [d.email for d in store.deliveries_by_message_id(two.message_id)] == [two.email]
    assert store.deliveries_by_message_id("<never@sent>") == []
    # Addresses compare case-insensitively, and only within the pack named.
    assert [d.email for d in store.deliveries_to("two@alpha.EXAMPLE", "pack-1")] == [two.email]
    assert store.deliveries_to("two@alpha.example", "pack-2") == []
    assert [d.order for d in store.deliveries_to("one@alpha.example", "pack-1")] == [found.order]


def test_a_failure_bounces_a_sent_delivery_and_adds_an_alert(store: Store) -> None:
    notice = sent_notice(store)
    bounced = store.apply_bounces("key-1", [failed(notice)], minutes(30))
    assert bounced is not None and [b.email for b in bounced] == ["one@alpha.example"]
    assert bounced[0].list_key == "alpha" and bounced[0].kind == "notice"
    one, two = store.deliveries("pack-1", stage_id=notice)
    assert one.state is DeliveryState.BOUNCED and two.state is DeliveryState.SENT
    assert one.bounce == ServerReport("5.1.1", "550 5.1.1 User unknown", minutes(30))
    assert one.reply == two.reply  # the relay's words are kept
    summary = store.stage_summary(notice)
    assert (summary.sent, summary.bounced, summary.total) == (1, 1, 2)
    alerts = [s for s in store.stages("pack-1") if s.kind is StageKind.ALERT]
    assert len(alerts) == 1
    assert alerts[0].state is StageState.SCHEDULED and alerts[0].report_of == notice
    assert alerts[0].detail is not None and "one@alpha.example" in alerts[0].detail
    assert "(list alpha)" in alerts[0].detail and "5.1.1" in alerts[0].detail


def test_a_notification_is_applied_once_across_instances(open_store: OpenStore) -> None:
    first, second = open_store(), open_store()
    notice = sent_notice(first)
    assert second.apply_bounces("key-1", [failed(notice)], minutes(30)) is not None
    assert first.apply_bounces("key-1", [failed(notice)], minutes(31)) is None
    assert first.is_applied("key-1") and not first.is_applied("key-2")
    assert len([s for s in first.stages("pack-1") if s.kind is StageKind.ALERT]) == 1
    # Another notification about the same delivery changes nothing more.
    assert first.apply_bounces("key-2", [failed(notice)], minutes(32)) == []
    bounce = first.deliveries("pack-1", stage_id=notice)[0].bounce
    assert bounce is not None and bounce.at == minutes(30)


def test_a_delay_is_recorded_without_a_state_change(store: Store) -> None:
    notice = sent_notice(store)
    delayed = BounceNote(notice, "one@alpha.example", False, "4.4.1", "connection timed out")
    assert store.apply_bounces("key-1", [delayed], minutes(10)) == []
    one = store.deliveries("pack-1", stage_id=notice)[0]
    assert one.state is DeliveryState.SENT and one.bounce is None
    assert one.delay == ServerReport("4.4.1", "connection timed out", minutes(10))
    assert not [s for s in store.stages("pack-1") if s.kind is StageKind.ALERT]


def test_only_a_sent_delivery_can_bounce(store: Store) -> None:
    pack = add(store)
    notice = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.claim_stage(notice, "a", T0, minutes(5))
    store.expand_stage(notice, recipients("one@alpha.example"), T0)
    assert store.apply_bounces("key-1", [failed(notice)], minutes(1)) == []
    assert store.deliveries(pack.id)[0].state is DeliveryState.PENDING


def test_a_bounced_partner_is_still_told_of_a_withdrawal(store: Store) -> None:
    notice = sent_notice(store)
    store.apply_bounces("key-1", [failed(notice)], minutes(30))
    assert {h.email for h in store.holders("pack-1")} == set(EMAILS)
    assert store.may_hold_notice("pack-1")


def test_bounced_addresses_give_the_last_reason_and_pack_count(store: Store) -> None:
    first = sent_notice(store, "pack-1")
    second = sent_notice(store, "pack-2")
    store.apply_bounces("k1", [failed(first)], minutes(10))
    later = BounceNote(second, "one@alpha.example", True, "5.2.2", "mailbox full")
    store.apply_bounces("k2", [later], minutes(20))
    store.apply_bounces("k3", [failed(second, "Two@Alpha.example")], minutes(30))
    found = store.bounced_addresses()
    assert [(b.email, b.list_key, b.last.status, b.packs) for b in found] == [
        ("one@alpha.example", "alpha", "5.2.2", 2),
        ("Two@Alpha.example", "alpha", "5.1.1", 1),
    ]
    assert found[0].last.diagnostic == "mailbox full" and found[0].last.at == minutes(20)
    recent = store.bounced_addresses(since=minutes(15))
    assert [(b.email, b.packs) for b in recent] == [
        ("one@alpha.example", 1),
        ("Two@Alpha.example", 1),
    ]


def test_a_bounced_alert_to_the_contact_raises_no_further_alert(store: Store) -> None:
    notice = sent_notice(store)
    store.apply_bounces("key-1", [failed(notice)], minutes(30))
    [alert] = [s for s in store.stages("pack-1") if s.kind is StageKind.ALERT]
    assert store.claim_stage(alert.id, "sender", minutes(31), minutes(35))
    store.expand_stage(alert.id, recipients("contact@gov.example"), minutes(31))

    store.record_attempt(
        alert.id, "contact@gov.example", ACCEPTED, minutes(31), state=DeliveryState.SENT
    )
    bounced = store.apply_bounces("key-2", [failed(alert.id, "contact@gov.example")], minutes(40))
    assert bounced is not None and [b.kind for b in bounced] == ["alert"]
    assert len([s for s in store.stages("pack-1") if s.kind is StageKind.ALERT]) == 1
