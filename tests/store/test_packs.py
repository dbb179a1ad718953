"""Packs and versions: add, read, clear, reschedule, amend, withdraw, purge, reseal, meta."""

from __future__ import annotations

from dataclasses import replace

import pytest

from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.packs import MovedWave, PackState, PackVersion, StageKind, StageState
from embargo_bot.store import SealedContent, Store

from .builders import (
    LIFT,
    SEALED,
    T0,
    a_pack,
    add,
    first_version,
    follow_up,
    live,
    minutes,
    notice,
    send,
    stage_id,
)
from .conftest import OpenStore


def test_a_pack_reads_back_as_it_was_added(store: Store) -> None:
    pack = a_pack(needs_clearance=True)
    assert store.add_pack(pack, first_version(pack), SEALED, [notice(), live()])
    assert store.get_pack(pack.id) == pack
    assert store.pack_state(pack.id) == (PackState.ACTIVE, 1, 1)
    assert store.versions(pack.id) == [first_version(pack)]
    assert store.sealed_content(pack.id, 1) == SEALED
    assert [s.kind for s in store.stages(pack.id)] == [StageKind.NOTICE, StageKind.LIVE]


def test_a_pack_without_reference_or_social_post(store: Store) -> None:
    pack = a_pack(reference=None)
    content = SealedContent(pdf=b"p", release=b"r", social=None)
    assert store.add_pack(pack, first_version(pack), content, [live()])
    assert store.get_pack(pack.id).reference is None
    assert store.sealed_content(pack.id, 1) == content


def test_a_taken_id_is_refused_and_nothing_changes(store: Store) -> None:
    first = add(store)
    other = a_pack(title="Another", lift_at=minutes(300))
    assert not store.add_pack(other, first_version(other), SEALED, [live()])
    assert store.get_pack(first.id) == first
    assert len(store.stages(first.id)) == 2


def test_packs_are_listed_by_lift_then_id(store: Store) -> None:
    add(store, a_pack("b-late", lift_at=minutes(600)), live(minutes(600)))
    add(store, a_pack("c-early", lift_at=minutes(60)), live(minutes(60)))
    add(store, a_pack("a-early", lift_at=minutes(60)), live(minutes(60)))
    assert [p.id for p in store.packs()] == ["a-early", "c-early", "b-late"]


def test_unknown_packs_and_versions_are_clear_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="no pack 'nope'"):
        store.get_pack("nope")
    with pytest.raises(StoreError, match="no pack"):
        store.pack_state("nope")
    add(store)
    with pytest.raises(StoreError, match="no version 7"):
        store.sealed_content("pack-1", 7)


def test_any_sealed_content_is_none_until_a_pack_is_stored(store: Store) -> None:
    assert store.any_sealed_content() is None
    add(store)
    assert store.any_sealed_content() == SEALED


def test_approval_by_someone_else_once(store: Store) -> None:
    pack = add(store, a_pack(needs_clearance=True))
    assert not store.approve(pack.id, "alice", minutes(1)), "the creator cannot clear it"
    assert store.approve(pack.id, "bob", minutes(1))
    assert not store.approve(pack.id, "carol", minutes(2)), "already cleared"
    cleared = store.get_pack(pack.id)
    assert (cleared.cleared_by, cleared.cleared_at) == ("bob", minutes(1))


def test_approval_needs_a_pack_that_needs_it_and_is_active(store: Store) -> None:
    plain = add(store)
    assert not store.approve(plain.id, "bob", minutes(1))
    gated = add(store, a_pack("gated", needs_clearance=True))
    assert store.withdraw(
        gated, by="alice", reason=None, now=minutes(1), follow_up=follow_up(StageKind.WITHDRAWN)
    )
    assert not store.approve(gated.id, "bob", minutes(2))


def test_reschedule_moves_the_lift_and_only_the_waves_it_is_given(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), notice(2, minutes(30)), live())
    wave_1 = stage_id(store, pack.id, StageKind.NOTICE, 1)
    wave_2 = stage_id(store, pack.id, StageKind.NOTICE, 2)
    new_lift = LIFT + (LIFT - T0)
    assert store.reschedule(
        pack,
        lift_at=new_lift,
        moved_waves=[MovedWave(wave_2, minutes(90), ("alpha",))],
        new_waves=[notice(3, minutes(95), ("beta",))],
        follow_up=follow_up(StageKind.CHANGED),
    )
    moved = store.get_pack(pack.id)
    assert (moved.lift_at, moved.lift_seq, moved.list_keys) == (new_lift, 2, pack.list_keys)
    assert store.stage_of(pack.id, StageKind.LIVE).due_at == new_lift
    assert store.stage(wave_1).due_at == store.stages(pack.id)[0].due_at  # not named: kept
    waves = [s for s in store.stages(pack.id) if s.kind is StageKind.NOTICE]
    assert [(s.wave, s.state, s.due_at, s.list_keys) for s in waves] == [
        (1, StageState.SCHEDULED, store.stage(wave_1).due_at, ()),
        (2, StageState.SCHEDULED, minutes(90), ("alpha",)),
        (3, StageState.SCHEDULED, minutes(95), ("beta",)),
    ]
    # Nothing was cancelled, and nobody held the notice yet, so nobody is told.
    assert all(s.kind is not StageKind.CHANGED for s in store.stages(pack.id))


def test_reschedule_refuses_to_move_a_wave_that_has_started(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), live())
    wave_1 = stage_id(store, pack.id, StageKind.NOTICE, 1)
    send(store, wave_1, ["one@alpha.example"])
    assert not store.reschedule(
        pack,
        lift_at=minutes(500),
        moved_waves=[MovedWave(wave_1, minutes(400), ())],
        new_waves=[],
        follow_up=follow_up(StageKind.CHANGED),
    )
    assert store.get_pack(pack.id).lift_seq == 1


def test_reschedule_tells_holders_when_someone_may_hold_the_notice(store: Store) -> None:
    pack = add(store)
    send(store, stage_id(store, pack.id, StageKind.NOTICE), ["one@alpha.example"])
    assert store.may_hold_notice(pack.id)
    assert store.reschedule(
        pack,
        lift_at=minutes(500),
        moved_waves=[],
        new_waves=[],
        follow_up=follow_up(StageKind.CHANGED, minutes(6)),
    )
    changed = [s for s in store.stages(pack.id) if s.kind is StageKind.CHANGED]
    assert [(s.state, s.due_at) for s in changed] == [(StageState.SCHEDULED, minutes(6))]


def test_changes_on_a_stale_view_return_false_and_change_nothing(store: Store) -> None:
    pack = add(store)
    assert store.reschedule(
        pack,
        lift_at=minutes(400),
        moved_waves=[],
        new_waves=[],
        follow_up=follow_up(StageKind.CHANGED),
    )
    stale = pack  # lift_seq 1; the store is at 2 now
    current = store.get_pack(pack.id)
    assert not store.reschedule(
        stale,
        lift_at=minutes(700),
        moved_waves=[],
        new_waves=[],
        follow_up=follow_up(StageKind.CHANGED),
    )
    version_2 = replace(first_version(pack), version=2, title="Amended", changed=("title",))
    assert not store.amend(stale, version_2, SEALED, follow_up(StageKind.UPDATED))
    assert not store.withdraw(
        stale, by="bob", reason="x", now=minutes(2), follow_up=follow_up(StageKind.WITHDRAWN)
    )
    assert store.get_pack(pack.id) == current
    assert len(store.versions(pack.id)) == 1


def test_no_change_once_the_live_email_has_started(store: Store) -> None:
    pack = add(store)
    assert store.claim_stage(stage_id(store, pack.id, StageKind.NOTICE), "s", T0, minutes(5))
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.finish_stage(notice_id, minutes(1), StageState.DONE, None, owner="s")
    assert store.claim_stage(stage_id(store, pack.id, StageKind.LIVE), "s", LIFT, minutes(200))
    assert not store.withdraw(
        pack, by="bob", reason=None, now=LIFT, follow_up=follow_up(StageKind.WITHDRAWN)
    )
    assert store.get_pack(pack.id).state is PackState.ACTIVE


def test_amend_stores_a_new_version_and_tells_holders(store: Store) -> None:
    pack = add(store)
    send(store, stage_id(store, pack.id, StageKind.NOTICE), ["one@alpha.example"])
    version_2 = PackVersion(
        pack_id=pack.id,
        version=2,
        title="Amended title",
        url="https://www.gov.example/strategy-2",
        pdf_name="strategy-v2.pdf",
        changed=("pdf", "title"),
        note="corrected figures",
        changed_by="bob",
        changed_at=minutes(3),
    )
    content_2 = SealedContent(pdf=b"pdf-2", release=b"release-2", social=None)
    assert store.amend(pack, version_2, content_2, follow_up(StageKind.UPDATED, minutes(3)))
    amended = store.get_pack(pack.id)
    assert (amended.version, amended.title, amended.pdf_name) == (
        2,
        "Amended title",
        "strategy-v2.pdf",
    )
    assert store.versions(pack.id) == [first_version(pack), version_2]
    assert store.sealed_content(pack.id, 1) == SEALED
    assert store.sealed_content(pack.id, 2) == content_2
    assert [s.kind for s in store.stages(pack.id)].count(StageKind.UPDATED) == 1


def test_withdraw_cancels_unsent_stages_and_tells_holders(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), notice(2, minutes(30)), live())
    send(store, stage_id(store, pack.id, StageKind.NOTICE, 1), ["one@alpha.example"])
    assert store.withdraw(
        pack, by="bob", reason="Postponed", now=minutes(4), follow_up=follow_up(StageKind.WITHDRAWN)
    )
    withdrawn = store.get_pack(pack.id)
    assert withdrawn.state is PackState.CANCELLED
    assert (withdrawn.cancelled_by, withdrawn.cancel_reason, withdrawn.cancelled_at) == (
        "bob",
        "Postponed",
        minutes(4),
    )
    states = {(s.kind, s.wave): s.state for s in store.stages(pack.id)}
    assert states == {
        (StageKind.NOTICE, 1): StageState.SENDING,  # it was being sent: its sender finishes it
        (StageKind.NOTICE, 2): StageState.CANCELLED,
        (StageKind.LIVE, None): StageState.CANCELLED,
        (StageKind.WITHDRAWN, None): StageState.SCHEDULED,
    }


def test_withdraw_before_anyone_holds_it_adds_no_follow_up(store: Store) -> None:
    pack = add(store)
    assert not store.may_hold_notice(pack.id)
    assert store.withdraw(
        pack, by="bob", reason=None, now=minutes(1), follow_up=follow_up(StageKind.WITHDRAWN)
    )
    assert all(s.state is StageState.CANCELLED for s in store.stages(pack.id))


def test_may_hold_notice_while_a_notice_is_being_sent(store: Store) -> None:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.claim_stage(notice_id, "s", T0, minutes(5))
    assert store.may_hold_notice(pack.id)


def test_purge_deletes_material_once_keeping_the_records(store: Store) -> None:
    done = add(store, a_pack("done-pack", lift_at=minutes(10)), live(minutes(10)))
    live_id = stage_id(store, done.id, StageKind.LIVE)
    assert store.claim_stage(live_id, "s", minutes(10), minutes(15))
    assert store.finish_stage(live_id, minutes(11), StageState.DONE, None, owner="s")
    withdrawn = add(store, a_pack("withdrawn-pack"))
    assert store.withdraw(
        withdrawn, by="b", reason=None, now=minutes(2), follow_up=follow_up(StageKind.WITHDRAWN)
    )
    add(store, a_pack("active-pack", lift_at=minutes(1)))

    assert store.purgeable_packs(minutes(1)) == []
    assert store.purgeable_packs(minutes(20)) == ["done-pack", "withdrawn-pack"]
    assert store.purge_pack("done-pack", minutes(30))
    assert not store.purge_pack("done-pack", minutes(31))
    assert store.get_pack("done-pack").purged_at == minutes(30)
    assert store.sealed_content("done-pack", 1) == SealedContent(b"", b"", None)
    assert store.purgeable_packs(minutes(40)) == ["withdrawn-pack"]
    assert len(store.stages("done-pack")) == 1


def test_reseal_replaces_every_versions_material(store: Store) -> None:
    pack = add(store)
    add(store, a_pack("other"))
    assert [(p, v) for p, v, _ in store.sealed_versions()] == [("other", 1), ("pack-1", 1)]
    resealed = SealedContent(pdf=b"new-pdf", release=b"new-release", social=None)
    store.reseal_version(pack.id, 1, resealed)
    assert store.sealed_content(pack.id, 1) == resealed
    assert store.sealed_content("other", 1) == SEALED


def test_meta_holds_bytes_and_replaces_only_when_asked(store: Store) -> None:
    assert store.meta("key check") is None
    store.set_meta("key check", b"\x00first", replace=False)
    store.set_meta("key check", b"second", replace=False)
    assert store.meta("key check") == b"\x00first"
    store.set_meta("key check", b"third")
    assert store.meta("key check") == b"third"


def test_nested_transactions_commit_together_or_not_at_all(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        add(store)
        with store.transaction():
            store.set_meta("inner", b"1")
        raise RuntimeError("the action failed after its parts")
    assert store.packs() == []
    assert store.meta("inner") is None
    with store.transaction():
        add(store)
        with store.transaction():
            store.set_meta("inner", b"1")
    assert [p.id for p in store.packs()] == ["pack-1"]
    assert store.meta("inner") == b"1"


def test_another_connection_sees_each_commit(store: Store, open_store: OpenStore) -> None:
    other = open_store()
    add(store)
    assert [p.id for p in other.packs()] == ["pack-1"]


def test_data_version_moves_when_another_connection_commits(
    store: Store, open_store: OpenStore
) -> None:
    other = open_store()
    before = store.data_version()
    assert store.data_version() == before, "reading changes nothing"
    add(other)
    after = store.data_version()
    assert after != before
    other.set_meta("seen", b"1")
    assert store.data_version() != after
