"""Packs, versions and stages to put in a store, with every time given explicitly."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.outcomes import Outcome, OutcomeKind
from embargo_bot.domain.packs import (
    DeliveryState,
    NewDelivery,
    NewStage,
    Pack,
    PackState,
    PackVersion,
    StageKind,
)
from embargo_bot.store import SealedContent, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIFT = T0 + timedelta(hours=2)
SEALED = SealedContent(pdf=b"sealed-pdf", release=b"sealed-release", social=b"sealed-social")
ACCEPTED = Outcome(OutcomeKind.ACCEPTED, 250, "2.0.0 queued")
DEFERRED = Outcome(OutcomeKind.TEMPORARY, 451, "4.3.0 try later")
REFUSED = Outcome(OutcomeKind.PERMANENT, 550, "5.1.1 no such mailbox")


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def a_pack(pack_id: str = "pack-1", **changes: object) -> Pack:
    pack = Pack(
        id=pack_id,
        title="Serious Organised Crime Strategy",
        reference="9781802019445",
        url="https://www.gov.example/strategy",
        classification=Classification.OFFICIAL_SENSITIVE,
        contact="ocu@example.org",
        lift_at=LIFT,
        list_keys=("alpha", "beta"),
        pdf_name="strategy.pdf",
        state=PackState.ACTIVE,
        created_at=T0,
        created_by="alice",
    )
    return replace(pack, **changes)  # type: ignore[arg-type]


def first_version(pack: Pack) -> PackVersion:
    return PackVersion(
        pack_id=pack.id,
        version=1,
        title=pack.title,
        url=pack.url,
        pdf_name=pack.pdf_name,
        changed=(),
        note=None,
        changed_by=pack.created_by,
        changed_at=pack.created_at,
    )


def notice(wave: int = 1, due_at: datetime = T0, lists: tuple[str, ...] = ()) -> NewStage:
    return NewStage(kind=StageKind.NOTICE, due_at=due_at, wave=wave, list_keys=lists)


def live(due_at: datetime = LIFT) -> NewStage:
    return NewStage(kind=StageKind.LIVE, due_at=due_at)


def follow_up(kind: StageKind, due_at: datetime = T0) -> NewStage:
    return NewStage(kind=kind, due_at=due_at)


def add(store: Store, pack: Pack | None = None, *stages: NewStage) -> Pack:
    """A pack with a notice now and the live email at the lift, unless stages are given."""
    pack = pack or a_pack()
    assert store.add_pack(pack, first_version(pack), SEALED, stages or (notice(), live()))
    return store.get_pack(pack.id)


_message_ids = itertools.count()


def recipients(*emails: str, list_key: str = "alpha") -> list[NewDelivery]:
    return [
        NewDelivery(email, None, list_key, message_id=f"<{next(_message_ids)}.{email}>")
        for email in emails
    ]


def stage_id(store: Store, pack_id: str, kind: StageKind, wave: int | None = None) -> int:
    for stage in store.stages(pack_id):
        if stage.kind is kind and (wave is None or stage.wave == wave):
            return stage.id
    raise AssertionError(f"no {kind} stage")


def send(
    store: Store, stage: int, emails: list[str], *, version: int = 1, lift_seq: int = 1
) -> None:
    """Claim a stage, fix its recipients and record each as sent: a notice gone out."""
    assert store.claim_stage(stage, "sender", T0, minutes(5))
    store.expand_stage(stage, recipients(*emails), T0)
    for email in emails:
        assert store.record_attempt(
            stage, email, ACCEPTED, T0, state=DeliveryState.SENT, version=version, lift_seq=lift_seq
        )
