"""Instances of the service: heartbeats, who is live and holds what, taking over from the dead."""

from __future__ import annotations

from datetime import datetime, timedelta

from embargo_bot.domain.packs import StageKind, StageState
from embargo_bot.store import Store

from .builders import T0, a_pack, add, live, minutes, notice, stage_id

STALE = timedelta(seconds=5)


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def test_heartbeats_register_instances_and_show_what_each_holds(store: Store) -> None:
    pack = add(store, a_pack(), notice(1), notice(2, T0, ("beta",)), live(T0))
    wave_1 = stage_id(store, pack.id, StageKind.NOTICE, 1)
    assert store.live_instances(T0, stale_after=STALE) == []
    store.record_heartbeat("host-a:10:aaaa", T0, host="host-a", pid=10)
    store.record_heartbeat("host-b:20:bbbb", seconds(1), host="host-b", pid=20)
    assert store.claim_stage(wave_1, "host-b:20:bbbb", seconds(1), minutes(5))
    store.record_heartbeat("host-a:10:aaaa", seconds(2), host="host-a", pid=10)

    found = store.live_instances(seconds(3), stale_after=STALE)
    assert [(i.id, i.host, i.pid, i.started_at, i.heartbeat_at) for i in found] == [
        ("host-a:10:aaaa", "host-a", 10, T0, seconds(2)),
        ("host-b:20:bbbb", "host-b", 20, seconds(1), seconds(1)),
    ]
    assert found[0].holds == ()
    assert [s.id for s in found[1].holds] == [wave_1]
    assert found[1].holds[0].state is StageState.SENDING


def test_an_instance_whose_heartbeat_stops_is_dead_and_loses_its_stages(store: Store) -> None:
    pack = add(store, a_pack(), live(T0))
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    store.record_heartbeat("killed", T0, host="h", pid=1)
    store.record_heartbeat("survivor", T0, host="h", pid=2)
    assert store.claim_stage(live_id, "killed", T0, minutes(30))
    store.record_heartbeat("survivor", seconds(6), host="h", pid=2)

    assert store.dead_instances(seconds(4), stale_after=STALE) == []
    assert store.reclaim_from_dead(seconds(4), stale_after=STALE) == 0
    assert store.dead_instances(seconds(6), stale_after=STALE) == ["killed"]
    assert [i.id for i in store.live_instances(seconds(6), stale_after=STALE)] == ["survivor"]
    assert store.reclaim_from_dead(seconds(6), stale_after=STALE) == 1
    back = store.stage(live_id)
    assert (back.state, back.owner, back.lease_until) == (StageState.SCHEDULED, None, None)
    assert store.claim_stage(live_id, "survivor", seconds(6), minutes(30)), "long before its lease"


def test_a_clean_stop_is_neither_live_nor_dead_and_a_restart_is_live_again(store: Store) -> None:
    store.record_heartbeat("a", T0, host="h", pid=1)
    store.instance_stopped("a", seconds(1))
    assert store.live_instances(seconds(2), stale_after=STALE) == []
    assert store.dead_instances(minutes(10), stale_after=STALE) == []
    store.record_heartbeat("a", seconds(3), host="h", pid=1)
    found = store.live_instances(seconds(4), stale_after=STALE)
    assert [(i.id, i.started_at) for i in found] == [("a", T0)]


def test_stages_of_owners_never_seen_are_left_to_their_leases(store: Store) -> None:
    pack = add(store, a_pack(), live(T0))
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    assert store.claim_stage(live_id, "an-older-release", T0, minutes(5))
    assert store.reclaim_from_dead(minutes(1), stale_after=STALE) == 0
    assert store.reclaim_abandoned(minutes(6)) == 1
