"""Deliveries: a stage's recipients fixed once, each attempt, and who holds the notice."""

from __future__ import annotations

from embargo_bot.domain.outcomes import OutcomeKind
from embargo_bot.domain.packs import (
    Attempt,
    DeliveryState,
    Holder,
    NewDelivery,
    StageKind,
    StageState,
)
from embargo_bot.store import StageSummary, Store

from .builders import (
    ACCEPTED,
    DEFERRED,
    REFUSED,
    T0,
    a_pack,
    add,
    follow_up,
    live,
    minutes,
    notice,
    recipients,
    send,
    stage_id,
)

EMAILS = ["one@alpha.example", "shared@alpha.example", "two@alpha.example"]


def expanded_notice(store: Store) -> tuple[str, int]:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.claim_stage(notice_id, "a", T0, minutes(5))
    assert store.expand_stage(notice_id, recipients(*EMAILS), minutes(1))
    return pack.id, notice_id


def test_a_stage_is_expanded_once(store: Store) -> None:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert not store.is_expanded(notice_id)
    listed = [
        NewDelivery("one@alpha.example", "Alpha One", "alpha", "<m1@t>"),
        NewDelivery("one@beta.example", None, "beta", "<m2@t>", certificate="PEM"),
    ]
    assert store.expand_stage(notice_id, listed, minutes(1), note="lists left out: gamma")
    assert store.is_expanded(notice_id)
    assert store.stage(notice_id).detail == "lists left out: gamma"
    assert not store.expand_stage(notice_id, recipients("late@alpha.example"), minutes(2))
    fixed = store.deliveries(pack.id)
    assert [(d.email, d.name, d.list_key, d.message_id, d.certificate) for d in fixed] == [
        ("one@alpha.example", "Alpha One", "alpha", "<m1@t>", None),
        ("one@beta.example", None, "beta", "<m2@t>", "PEM"),
    ]
    first = fixed[0]
    assert (first.stage_id, first.pack_id, first.kind, first.state, first.attempts) == (
        notice_id,
        pack.id,
        StageKind.NOTICE,
        DeliveryState.PENDING,
        0,
    )
    assert (first.created_at, first.updated_at, first.reply, first.version) == (
        minutes(1),
        minutes(1),
        None,
        None,
    )


def test_a_stage_with_nobody_to_send_to_is_still_expanded(store: Store) -> None:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.expand_stage(notice_id, [], minutes(1))
    assert store.is_expanded(notice_id)
    assert store.stage_summary(notice_id) == StageSummary()
    assert store.stage(notice_id).detail is None


def test_attempts_are_recorded_only_while_the_delivery_is_pending(store: Store) -> None:
    pack_id, notice_id = expanded_notice(store)
    one, shared, two = EMAILS
    assert store.record_attempt(
        notice_id, one, DEFERRED, minutes(2), state=DeliveryState.PENDING, retry_at=minutes(3)
    )
    waiting = store.deliveries(pack_id, state=DeliveryState.PENDING)[0]
    assert (waiting.email, waiting.attempts, waiting.next_attempt_at, waiting.reply) == (
        one,
        1,
        minutes(3),
        "451 4.3.0 try later",
    )
    assert store.record_attempt(
        notice_id, one, ACCEPTED, minutes(3), state=DeliveryState.SENT, version=1, lift_seq=1
    )
    assert not store.record_attempt(
        notice_id, one, ACCEPTED, minutes(4), state=DeliveryState.SENT, version=1, lift_seq=1
    ), "already sent: a second outcome changes nothing"
    assert store.record_attempt(notice_id, shared, REFUSED, minutes(4), state=DeliveryState.FAILED)
    assert not store.record_attempt(
        notice_id, "stranger@x.example", ACCEPTED, T0, state=DeliveryState.SENT
    )

    sent = store.deliveries(pack_id, state=DeliveryState.SENT)
    assert [(d.email, d.attempts, d.version, d.lift_seq, d.next_attempt_at) for d in sent] == [
        (one, 2, 1, 1, None)
    ]
    failed = store.deliveries(pack_id, state=DeliveryState.FAILED)[0]
    assert (failed.email, failed.version, failed.lift_seq, failed.updated_at) == (
        shared,
        None,
        None,
        minutes(4),
    )
    assert store.attempts(pack_id) == [
        Attempt(notice_id, one, 1, minutes(2), OutcomeKind.TEMPORARY, 451, "4.3.0 try later"),
        Attempt(notice_id, one, 2, minutes(3), OutcomeKind.ACCEPTED, 250, "2.0.0 queued"),
        Attempt(
            notice_id, shared, 1, minutes(4), OutcomeKind.PERMANENT, 550, "5.1.1 no such mailbox"
        ),
    ]
    assert store.stage_summary(notice_id) == StageSummary(pending=1, sent=1, failed=1)
    assert store.stage_summary(notice_id).total == 3
    assert [d.email for d in store.deliveries(pack_id, stage_id=notice_id)] == EMAILS
    assert [d.email for d in store.deliveries(pack_id, state=DeliveryState.PENDING)] == [two]


def test_deliveries_are_filtered_by_stage_and_state(store: Store) -> None:
    pack_id, notice_id = expanded_notice(store)
    live_id = stage_id(store, pack_id, StageKind.LIVE)
    assert store.expand_stage(live_id, recipients("one@alpha.example", list_key="alpha"), T0)
    assert [d.stage_id for d in store.deliveries(pack_id)] == [notice_id] * 3 + [live_id]
    assert [d.kind for d in store.deliveries(pack_id, stage_id=live_id)] == [StageKind.LIVE]
    assert store.deliveries(pack_id, stage_id=live_id, state=DeliveryState.SENT) == []
    assert store.deliveries("other-pack") == []


def test_cancel_pending_leaves_finished_deliveries_alone(store: Store) -> None:
    pack_id, notice_id = expanded_notice(store)
    assert store.record_attempt(
        notice_id, EMAILS[0], ACCEPTED, minutes(2), state=DeliveryState.SENT
    )
    assert store.cancel_pending(notice_id, minutes(3), "not sent: the pack was withdrawn") == 2
    assert store.cancel_pending(notice_id, minutes(4), "again") == 0
    cancelled = store.deliveries(pack_id, state=DeliveryState.CANCELLED)
    assert [(d.email, d.reply, d.updated_at) for d in cancelled] == [
        (email, "not sent: the pack was withdrawn", minutes(3)) for email in EMAILS[1:]
    ]
    assert store.stage_summary(notice_id) == StageSummary(sent=1, cancelled=2)


def test_notice_addresses_are_other_waves_any_outcome_casefolded(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), notice(2), live(T0))
    wave_1 = stage_id(store, pack.id, StageKind.NOTICE, 1)
    wave_2 = stage_id(store, pack.id, StageKind.NOTICE, 2)
    assert store.expand_stage(wave_1, recipients("One@Alpha.example", "two@alpha.example"), T0)
    assert store.record_attempt(
        wave_1, "two@alpha.example", REFUSED, T0, state=DeliveryState.FAILED
    )
    assert store.expand_stage(wave_2, recipients("three@alpha.example"), T0)
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    assert store.expand_stage(live_id, recipients("live-only@alpha.example"), T0)
    assert store.notice_addresses(pack.id, other_than=wave_2) == {
        "one@alpha.example",
        "two@alpha.example",
    }
    assert store.notice_addresses(pack.id, other_than=wave_1) == {"three@alpha.example"}


def test_holders_are_those_sent_the_material_with_what_they_were_last_told(store: Store) -> None:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    send(store, notice_id, ["one@alpha.example", "two@alpha.example"])
    assert store.finish_stage(notice_id, minutes(1), StageState.DONE, None, owner="sender")
    updated = store.add_stage(pack.id, follow_up(StageKind.UPDATED, minutes(2)))
    assert store.claim_stage(updated, "s", minutes(2), minutes(7))
    assert store.expand_stage(updated, recipients("one@alpha.example", "two@alpha.example"), T0)
    assert store.record_attempt(
        updated, "one@alpha.example", ACCEPTED, minutes(3), state=DeliveryState.SENT,
        version=2, lift_seq=3,
    )  # fmt: skip
    assert store.record_attempt(
        updated, "two@alpha.example", REFUSED, minutes(3), state=DeliveryState.FAILED
    )
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    assert store.expand_stage(live_id, recipients("public@alpha.example"), T0)
    assert store.record_attempt(
        live_id,
        "public@alpha.example",
        ACCEPTED,
        T0,
        state=DeliveryState.SENT,
        version=2,
        lift_seq=3,
    )
    assert store.holders(pack.id) == [
        Holder("one@alpha.example", None, "alpha", version=2, lift_seq=3),
        Holder("two@alpha.example", None, "alpha", version=1, lift_seq=1),
    ]
    assert store.holders("other") == []


def test_deliveries_sent_in_one_message_share_its_message_id(store: Store) -> None:
    pack_id, notice_id = expanded_notice(store)
    first = store.deliveries(pack_id)[0].message_id
    assert store.bind_message(notice_id, EMAILS[:2], first) == 2
    assert store.record_attempt(notice_id, EMAILS[1], ACCEPTED, T0, state=DeliveryState.SENT)
    # Only the pending are bound: one already sent keeps the message it went in.
    assert store.bind_message(notice_id, EMAILS[1:], "<other@t>") == 1
    ids = [d.message_id for d in store.deliveries(pack_id)]
    assert ids[:2] == [first, first] and ids[2] == "<other@t>"
