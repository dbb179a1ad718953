"""Stages: what may start, who holds it, leases, and closing it."""

from __future__ import annotations

import threading

import pytest

from embargo_bot.domain.errors import StoreError
from embargo_bot.domain.packs import NewStage, PackState, StageKind, StageState
from embargo_bot.store import Store

from .builders import (
    LIFT,
    T0,
    a_pack,
    add,
    follow_up,
    live,
    minutes,
    notice,
    send,
    stage_id,
)
from .conftest import OpenStore


def test_stages_read_back_in_due_order(store: Store) -> None:
    pack = add(store, a_pack(), live(), notice(2, minutes(30), ("beta",)), notice(1))
    stages = store.stages(pack.id)
    assert [(s.kind, s.wave) for s in stages] == [
        (StageKind.NOTICE, 1),
        (StageKind.NOTICE, 2),
        (StageKind.LIVE, None),
    ]
    wave_2 = stages[1]
    assert store.stage(wave_2.id) == wave_2
    assert (wave_2.due_at, wave_2.list_keys, wave_2.state) == (
        minutes(30),
        ("beta",),
        StageState.SCHEDULED,
    )
    assert wave_2.owner is None and wave_2.lease_until is None and wave_2.started_at is None
    assert store.stage_of(pack.id, StageKind.LIVE).due_at == LIFT


def test_every_field_of_a_new_stage_is_kept(store: Store) -> None:
    pack = add(store)
    new = NewStage(
        kind=StageKind.TEST,
        due_at=minutes(1),
        list_keys=("alpha",),
        base_lift_seq=1,
        base_version=1,
        old_lift_at=LIFT,
        test_address="one@alpha.example",
        test_of=(StageKind.NOTICE, StageKind.LIVE),
        report_of=stage_id(store, pack.id, StageKind.NOTICE),
    )
    added = store.stage(store.add_stage(pack.id, new))
    assert (
        added.kind,
        added.due_at,
        added.list_keys,
        added.base_lift_seq,
        added.base_version,
        added.old_lift_at,
        added.test_address,
        added.test_of,
        added.report_of,
    ) == (
        new.kind,
        new.due_at,
        new.list_keys,
        1,
        1,
        LIFT,
        "one@alpha.example",
        (StageKind.NOTICE, StageKind.LIVE),
        new.report_of,
    )


def test_unknown_stages_are_clear_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="no stage 404"):
        store.stage(404)
    pack = add(store)
    with pytest.raises(StoreError, match="no withdrawn stage"):
        store.stage_of(pack.id, StageKind.WITHDRAWN)


def test_runnable_stages_leave_out_packs_awaiting_clearance(store: Store) -> None:
    open_pack = add(store, a_pack("open", lift_at=minutes(60)), live(minutes(60)))
    gated = add(store, a_pack("gated", needs_clearance=True))
    test_id = store.add_stage(gated.id, NewStage(kind=StageKind.TEST, due_at=minutes(1)))
    report_id = store.add_stage(gated.id, NewStage(kind=StageKind.REPORT, due_at=minutes(2)))
    runnable = [s.id for s in store.runnable_stages()]
    assert runnable == [test_id, report_id, stage_id(store, open_pack.id, StageKind.LIVE)]
    assert store.approve(gated.id, "bob", minutes(3))
    assert len(store.runnable_stages()) == 5


def test_a_stage_is_claimed_once_it_is_due_and_then_by_one_owner(store: Store) -> None:
    pack = add(store)
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert not store.claim_stage(live_id, "a", minutes(119), minutes(125)), "not yet due"
    assert store.claim_stage(notice_id, "a", minutes(1), minutes(6))
    assert not store.claim_stage(notice_id, "b", minutes(1), minutes(6)), "someone has it"
    claimed = store.stage(notice_id)
    assert (claimed.state, claimed.owner, claimed.lease_until, claimed.started_at) == (
        StageState.SENDING,
        "a",
        minutes(6),
        minutes(1),
    )
    assert store.stage_owners() == ["a"]


def test_a_pack_awaiting_clearance_sends_only_tests_and_reports(store: Store) -> None:
    pack = add(store, a_pack(needs_clearance=True))
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    test_id = store.add_stage(pack.id, NewStage(kind=StageKind.TEST, due_at=T0))
    report_id = store.add_stage(pack.id, NewStage(kind=StageKind.REPORT, due_at=T0))
    assert not store.claim_stage(notice_id, "a", minutes(1), minutes(6))
    assert store.claim_stage(test_id, "a", minutes(1), minutes(6))
    assert store.claim_stage(report_id, "a", minutes(1), minutes(6))
    assert store.approve(pack.id, "bob", minutes(2))
    assert store.claim_stage(notice_id, "a", minutes(2), minutes(7))


def test_a_withdrawn_pack_sends_only_its_withdrawal_and_reports(store: Store) -> None:
    pack = add(store)
    send(store, stage_id(store, pack.id, StageKind.NOTICE), ["one@alpha.example"])
    assert store.withdraw(
        pack, by="bob", reason=None, now=minutes(1), follow_up=follow_up(StageKind.WITHDRAWN)
    )
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.finish_stage(notice_id, minutes(2), StageState.DONE, None, owner="sender")
    late_test = store.add_stage(pack.id, NewStage(kind=StageKind.TEST, due_at=T0))
    report = store.add_stage(pack.id, NewStage(kind=StageKind.REPORT, due_at=T0))
    assert not store.claim_stage(late_test, "a", minutes(3), minutes(8))
    assert store.claim_stage(
        stage_id(store, pack.id, StageKind.WITHDRAWN), "a", minutes(3), minutes(8)
    )
    assert store.claim_stage(report, "a", minutes(3), minutes(8))


def test_a_report_goes_after_its_pack_is_done(store: Store) -> None:
    pack = add(store, a_pack(), live(T0))
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    assert store.claim_stage(live_id, "a", T0, minutes(5))
    report = NewStage(kind=StageKind.REPORT, due_at=minutes(1), report_of=live_id)
    assert store.finish_stage(
        live_id, minutes(1), StageState.DONE, "sent", owner="a", report=report
    )
    assert store.get_pack(pack.id).state is PackState.ACTIVE, "its report is still to go"
    report_id = stage_id(store, pack.id, StageKind.REPORT)
    assert store.stage(report_id).report_of == live_id
    assert store.claim_stage(report_id, "a", minutes(1), minutes(6))
    assert store.finish_stage(report_id, minutes(2), StageState.DONE, None, owner="a")
    assert store.get_pack(pack.id).state is PackState.DONE


def test_notice_waves_go_in_order(store: Store) -> None:
    pack = add(
        store, a_pack(), notice(1, minutes(10)), notice(2, minutes(10)), notice(3, T0), live()
    )
    wave = {n: stage_id(store, pack.id, StageKind.NOTICE, n) for n in (1, 2, 3)}
    # Wave 3 is due earliest, so it goes first; waves 1 and 2 share a time: by id.
    assert not store.claim_stage(wave[1], "a", minutes(10), minutes(15))
    assert store.claim_stage(wave[3], "a", minutes(10), minutes(15))
    assert not store.claim_stage(wave[1], "a", minutes(10), minutes(15)), "wave 3 is sending"
    assert store.finish_stage(wave[3], minutes(11), StageState.DONE, None, owner="a")
    assert not store.claim_stage(wave[2], "a", minutes(11), minutes(16))
    assert store.claim_stage(wave[1], "a", minutes(11), minutes(16))
    assert store.finish_stage(wave[1], minutes(12), StageState.FAILED, "list invalid", owner="a")
    assert store.claim_stage(wave[2], "a", minutes(12), minutes(17))


def test_follow_ups_wait_for_notices_being_sent_and_earlier_follow_ups(store: Store) -> None:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert store.claim_stage(notice_id, "a", T0, minutes(5))
    changed = store.add_stage(pack.id, follow_up(StageKind.CHANGED))
    updated = store.add_stage(pack.id, follow_up(StageKind.UPDATED))
    assert not store.claim_stage(changed, "b", minutes(1), minutes(6)), "the notice is going out"
    assert store.finish_stage(notice_id, minutes(1), StageState.DONE, None, owner="a")
    assert not store.claim_stage(updated, "b", minutes(1), minutes(6)), (
        "the earlier follow-up first"
    )
    assert store.claim_stage(changed, "b", minutes(1), minutes(6))
    assert not store.claim_stage(updated, "b", minutes(1), minutes(6)), "still sending"
    assert store.finish_stage(changed, minutes(2), StageState.DONE, None, owner="b")
    assert store.claim_stage(updated, "b", minutes(2), minutes(7))


def test_a_lease_is_renewed_and_released_only_by_its_owner(store: Store) -> None:
    pack = add(store)
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    assert not store.renew_lease(notice_id, "a", minutes(9)), "nobody holds it yet"
    assert store.claim_stage(notice_id, "a", T0, minutes(5))
    assert store.renew_lease(notice_id, "a", minutes(9))
    assert not store.renew_lease(notice_id, "b", minutes(20))
    assert store.stage(notice_id).lease_until == minutes(9)
    assert not store.release_stage(notice_id, "b")
    assert store.release_stage(notice_id, "a")
    released = store.stage(notice_id)
    assert (released.state, released.owner, released.lease_until) == (
        StageState.SCHEDULED,
        None,
        None,
    )
    assert released.started_at == T0, "a resumed stage keeps when it first started"
    assert store.claim_stage(notice_id, "b", minutes(1), minutes(6))
    assert store.stage(notice_id).started_at == T0


def test_an_expired_lease_or_a_dead_owner_gives_the_stage_back(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), notice(2), live(T0))
    first = stage_id(store, pack.id, StageKind.NOTICE, 1)
    assert store.claim_stage(first, "dies", T0, minutes(5))
    assert store.reclaim_abandoned(minutes(4)) == 0, "the lease still runs"
    assert store.reclaim_abandoned(minutes(6)) == 1
    assert store.stage(first).state is StageState.SCHEDULED
    assert store.claim_stage(first, "killed", minutes(6), minutes(60))
    assert store.reclaim_abandoned(minutes(7), ["someone-else"]) == 0
    assert store.reclaim_abandoned(minutes(7), ["killed"]) == 1
    back = store.stage(first)
    assert (back.state, back.owner, back.lease_until) == (StageState.SCHEDULED, None, None)
    assert store.stage_owners() == []


def test_finishing_a_stage_needs_its_owner_or_a_scheduled_skip(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), live())
    notice_id = stage_id(store, pack.id, StageKind.NOTICE)
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    assert store.claim_stage(notice_id, "a", T0, minutes(5))
    assert not store.finish_stage(notice_id, minutes(1), StageState.DONE, None, owner="b")
    assert not store.finish_stage(notice_id, minutes(1), StageState.SKIPPED, None), "it is sending"
    assert store.finish_stage(notice_id, minutes(1), StageState.DONE, "3 sent", owner="a")
    done = store.stage(notice_id)
    assert (done.state, done.finished_at, done.detail, done.lease_until) == (
        StageState.DONE,
        minutes(1),
        "3 sent",
        None,
    )
    assert not store.finish_stage(notice_id, minutes(2), StageState.FAILED, None, owner="a")
    assert store.get_pack(pack.id).state is PackState.ACTIVE
    assert store.finish_stage(live_id, minutes(2), StageState.SKIPPED, "lift passed")
    assert store.get_pack(pack.id).state is PackState.DONE


def test_two_connections_racing_for_a_stage_one_wins(open_store: OpenStore) -> None:
    setup = open_store()
    packs = [add(setup, a_pack(f"race-{n}"), live(T0)) for n in range(10)]
    stages = [stage_id(setup, pack.id, StageKind.LIVE) for pack in packs]
    wins: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def race(name: str) -> None:
        # Each racer connects in its own thread, as a separate process would.
        store = open_store(closed_by_caller=True)
        try:
            for stage in stages:
                barrier.wait(timeout=10)
                if store.claim_stage(stage, name, T0, minutes(5)):
                    wins[name].append(stage)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=race, args=(name,)) for name in wins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(wins["a"] + wins["b"]) == stages, "each stage to exactly one racer"
    assert {setup.stage(s).owner for s in wins["a"]} <= {"a"}
    assert {setup.stage(s).owner for s in wins["b"]} <= {"b"}


def test_the_last_two_stages_finishing_at_once_still_close_the_pack(
    open_store: OpenStore,
) -> None:
    setup = open_store()
    rounds = 10
    packs = [add(setup, a_pack(f"pair-{n}"), live(T0), notice(1, T0)) for n in range(rounds)]
    pairs = [[s.id for s in setup.stages(pack.id)] for pack in packs]
    for pair in pairs:
        for stage, owner in zip(pair, ("a", "b"), strict=True):
            assert setup.claim_stage(stage, owner, T0, minutes(5)), "waves of one kind wait"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def finish(index: int, owner: str) -> None:
        store = open_store(closed_by_caller=True)
        try:
            for pair in pairs:
                barrier.wait(timeout=10)
                assert store.finish_stage(
                    pair[index], minutes(1), StageState.DONE, None, owner=owner
                )
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=finish, args=(i, o)) for i, o in ((0, "a"), (1, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert [setup.get_pack(pack.id).state for pack in packs] == [PackState.DONE] * rounds


def test_a_withdrawal_racing_the_live_claim_never_both_succeed(open_store: OpenStore) -> None:
    setup = open_store()
    packs = [add(setup, a_pack(f"lift-{n}"), live(T0)) for n in range(10)]
    barrier = threading.Barrier(2)
    outcomes: dict[str, list[bool]] = {"claimed": [], "withdrawn": []}
    errors: list[BaseException] = []

    def act(name: str) -> None:
        store = open_store(closed_by_caller=True)
        try:
            for pack in packs:
                barrier.wait(timeout=10)
                if name == "claimed":
                    done = store.claim_stage(
                        stage_id(store, pack.id, StageKind.LIVE), "s", T0, minutes(5)
                    )
                else:
                    done = store.withdraw(
                        pack,
                        by="bob",
                        reason=None,
                        now=T0,
                        follow_up=follow_up(StageKind.WITHDRAWN),
                    )
                outcomes[name].append(done)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=act, args=(name,)) for name in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    pairs = list(zip(outcomes["claimed"], outcomes["withdrawn"], strict=True))
    assert all(claimed != withdrawn for claimed, withdrawn in pairs), pairs
