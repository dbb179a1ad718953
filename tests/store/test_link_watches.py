"""Link checks: the latest per watch, alerts at most once with their stage, and `release`."""

from __future__ import annotations

from datetime import timedelta

from embargo_bot.domain.link_watch import SeenCheck, Watch
from embargo_bot.domain.packs import NewStage, PackState, StageKind, StageState
from embargo_bot.store import Store

from .builders import LIFT, a_pack, add, stage_id


def alert(detail: str) -> NewStage:
    return NewStage(kind=StageKind.ALERT, due_at=LIFT, detail=detail)


def test_a_pack_keeps_its_expected_text_and_link_check(store: Store) -> None:
    pack = add(store, a_pack(expect_text="Strategy published", link_check=False))
    assert (pack.expect_text, pack.link_check) == ("Strategy published", False)
    assert (pack.released_by, pack.released_at) == (None, None)
    assert add(store, a_pack("pack-2")).link_check is True


def test_the_latest_check_per_watch_is_kept_and_an_alert_goes_once(store: Store) -> None:
    pack = add(store)
    assert store.link_watches(pack.id) == []
    first = SeenCheck(LIFT, "HTTP 404", 404, False)
    store.record_link_check(
        pack.id, Watch.LIVE, first, alert="not-live", alert_stage=alert("not up\n\nwords")
    )
    again = SeenCheck(LIFT + timedelta(seconds=2), "HTTP 404", 404, False)
    store.record_link_check(
        pack.id, Watch.LIVE, again, alert="not-live", alert_stage=alert("not up\n\nwords")
    )
    store.record_link_check(pack.id, Watch.EARLY, SeenCheck(LIFT, "HTTP 200", 200, True))
    live = store.link_watch(pack.id, Watch.LIVE)
    assert live is not None
    assert (live.checked_at, live.seen, live.status, live.live) == (
        again.checked_at,
        "HTTP 404",
        404,
        False,
    )
    assert (live.checks, live.alerts) == (2, ("not-live",))
    early = store.link_watch(pack.id, Watch.EARLY)
    assert early is not None and early.live and early.alerts == ()
    alerts = [s for s in store.stages(pack.id) if s.kind is StageKind.ALERT]
    assert len(alerts) == 1, "the alert's stage is added once, with the first record"
    assert alerts[0].detail == "not up\n\nwords" and alerts[0].label == "alert"


def test_an_alert_stage_is_claimable_whatever_the_clearance(store: Store) -> None:
    pack = add(store, a_pack(needs_clearance=True))
    store.record_link_check(
        pack.id, Watch.EARLY, SeenCheck(LIFT, "HTTP 200", 200, True), alert="early",
        alert_stage=alert("out early\n\nwords"),
    )  # fmt: skip
    alert_id = stage_id(store, pack.id, StageKind.ALERT)
    assert alert_id in {s.id for s in store.runnable_stages()}
    assert store.claim_stage(alert_id, "me", LIFT, LIFT + timedelta(seconds=30))


def test_a_check_renews_the_lease_of_the_stage_it_gates(store: Store) -> None:
    pack = add(store)
    live_id = stage_id(store, pack.id, StageKind.LIVE)
    assert store.claim_stage(live_id, "me", LIFT, LIFT + timedelta(seconds=30))
    later = LIFT + timedelta(minutes=5)
    store.record_link_check(
        pack.id, Watch.LIVE, SeenCheck(LIFT, "HTTP 404", 404, False), lease=(live_id, "me", later)
    )
    stage = store.stage(live_id)
    assert stage.state is StageState.SENDING and stage.lease_until == later


def test_release_marks_the_pack_once(store: Store) -> None:
    pack = add(store)
    assert store.release(pack.id, "duty-officer", LIFT)
    assert not store.release(pack.id, "someone-else", LIFT)
    released = store.get_pack(pack.id)
    assert (released.released_by, released.released_at) == ("duty-officer", LIFT)
    assert released.state is PackState.ACTIVE
