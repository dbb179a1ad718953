"""The embargo rules: what to do with a stage at a given moment, and the last gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from embargo_bot.delivery.rules import Action, decide, may_send
from embargo_bot.domain.classification import Classification
from embargo_bot.domain.packs import Pack, PackState, Stage, StageKind, StageState

LIFT = datetime(2022, 2, 23, 11, 0, tzinfo=UTC)
NOTICE_DUE = datetime(2022, 2, 22, 9, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
NOTICE = StageKind.NOTICE
LIVE = StageKind.LIVE


def make_pack(state: PackState = PackState.ACTIVE) -> Pack:
    return Pack(
        id="serious-organised-crime-7k2q",
        title="Serious Organised Crime Strategy",
        reference=None,
        url="https://www.gov.scot/isbn/9781802019445",
        classification=Classification.OFFICIAL_SENSITIVE,
        contact="press@gov.example",
        lift_at=LIFT,
        list_keys=("nca",),
        pdf_name="soc-strategy.pdf",
        state=state,
        created_at=datetime(2022, 2, 20, 9, 0, tzinfo=UTC),
        created_by="official",
    )


def make_stage(
    kind: StageKind, due_at: datetime, state: StageState = StageState.SCHEDULED
) -> Stage:
    return Stage(
        id=1,
        pack_id="serious-organised-crime-7k2q",
        kind=kind,
        due_at=due_at,
        state=state,
        started_at=None,
        finished_at=None,
        detail=None,
        owner=None,
        lease_until=None,
    )


@pytest.mark.parametrize(
    ("pack_state", "stage_state", "reason"),
    [
        # Nothing to do for a pack that is no longer active, even when due.
        (PackState.CANCELLED, StageState.SCHEDULED, "pack is cancelled"),
        (PackState.DONE, StageState.SCHEDULED, "pack is done"),
        (PackState.CANCELLED, StageState.SENDING, "pack is cancelled"),
        # Nor for a stage that is not waiting to be sent: someone has it, or it is over.
        (PackState.ACTIVE, StageState.SENDING, "stage is sending"),
        (PackState.ACTIVE, StageState.DONE, "stage is done"),
        (PackState.ACTIVE, StageState.SKIPPED, "stage is skipped"),
        (PackState.ACTIVE, StageState.CANCELLED, "stage is cancelled"),
        (PackState.ACTIVE, StageState.FAILED, "stage is failed"),
    ],
)
@pytest.mark.parametrize(
    ("kind", "due_at", "now"),
    [
        (NOTICE, NOTICE_DUE, NOTICE_DUE),
        (NOTICE, NOTICE_DUE, NOTICE_DUE - TICK),
        (LIVE, LIFT, LIFT),
        (LIVE, LIFT, LIFT + timedelta(hours=1)),
    ],
)
def test_decide_ignores_what_is_not_waiting(
    pack_state: PackState,
    stage_state: StageState,
    reason: str,
    kind: StageKind,
    due_at: datetime,
    now: datetime,
) -> None:
    decision = decide(make_pack(pack_state), make_stage(kind, due_at, stage_state), now)
    assert decision.action is Action.IGNORE
    assert decision.reason == reason


@pytest.mark.parametrize(
    ("kind", "due_at", "now", "action", "reason"),
    [
        # The notice: wait for its time, send it before the lift, skip it after.
        (NOTICE, NOTICE_DUE, NOTICE_DUE - TICK, Action.WAIT, "not due yet"),
        (NOTICE, NOTICE_DUE, NOTICE_DUE, Action.SEND, ""),
        (NOTICE, NOTICE_DUE, LIFT - TICK, Action.SEND, ""),
        (NOTICE, NOTICE_DUE, LIFT, Action.SKIP, "the lift passed"),
        (NOTICE, NOTICE_DUE, LIFT + timedelta(hours=1), Action.SKIP, "the lift passed"),
        (NOTICE, LIFT - TICK, LIFT, Action.SKIP, "the lift passed"),
        # The live email: never before the lift, even when its stage says it is due.
        (LIVE, LIFT, LIFT - TICK, Action.WAIT, "not due yet"),
        (LIVE, LIFT - HOUR, LIFT - HOUR / 2, Action.WAIT, "the embargo has not lifted"),
        (LIVE, LIFT - HOUR, LIFT - TICK, Action.WAIT, "the embargo has not lifted"),
        (LIVE, LIFT - HOUR, LIFT, Action.SEND, ""),
        (LIVE, LIFT, LIFT, Action.SEND, ""),
        (LIVE, LIFT, LIFT + timedelta(days=1), Action.SEND, ""),
    ],
)
def test_decide_when_active_and_scheduled(
    kind: StageKind, due_at: datetime, now: datetime, action: Action, reason: str
) -> None:
    decision = decide(make_pack(), make_stage(kind, due_at), now)
    assert decision.action is action
    if reason:
        assert reason in decision.reason
    else:
        assert decision.reason == ""


@pytest.mark.parametrize(
    ("kind", "now", "allowed"),
    [
        (LIVE, LIFT - timedelta(days=1), False),
        (LIVE, LIFT - TICK, False),
        (LIVE, LIFT, True),
        (LIVE, LIFT + TICK, True),
        (NOTICE, LIFT - timedelta(days=1), True),
        (NOTICE, LIFT, True),
        (NOTICE, LIFT + TICK, True),
    ],
)
def test_may_send(kind: StageKind, now: datetime, allowed: bool) -> None:
    assert may_send(kind, make_pack(), now) is allowed


def test_may_send_compares_instants_not_wall_clocks() -> None:
    # 11:30 in London in February is 11:30Z: after the 11:00Z lift.
    after = datetime(2022, 2, 23, 11, 30, tzinfo=ZoneInfo("Europe/London"))
    # 06:30 in New York is 11:30Z too; 05:59 is 10:59Z, before it.
    before = datetime(2022, 2, 23, 5, 59, tzinfo=ZoneInfo("America/New_York"))
    assert may_send(LIVE, make_pack(), after) is True
    assert may_send(LIVE, make_pack(), before) is False


@pytest.mark.parametrize("pack_state", [PackState.DONE, PackState.CANCELLED])
@pytest.mark.parametrize("kind", [StageKind.REPORT, StageKind.ALERT])
def test_mail_to_the_contact_goes_whatever_the_packs_state(
    pack_state: PackState, kind: StageKind
) -> None:
    """A partner's bounce may come back after the pack is done or withdrawn: its alert goes."""
    later = LIFT + timedelta(hours=2)
    assert decide(make_pack(pack_state), make_stage(kind, later), later).action is Action.SEND
