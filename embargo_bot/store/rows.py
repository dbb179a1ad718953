"""Turning rows into the domain's frozen dataclasses, and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from embargo_bot.domain.bounces import ServerReport
from embargo_bot.domain.classification import Classification
from embargo_bot.domain.outcomes import OutcomeKind
from embargo_bot.domain.packs import (
    Attempt,
    Delivery,
    DeliveryState,
    Pack,
    PackState,
    PackVersion,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.domain.times import from_storage, to_storage

Row = Sequence[Any]


def optional_time(text: str | None) -> datetime | None:
    return None if text is None else from_storage(text)


def optional_storage(moment: datetime | None) -> str | None:
    return None if moment is None else to_storage(moment)


def split_keys(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def pack(row: Row) -> Pack:
    (pack_id, title, reference, url, marking, contact, lift_at, list_keys, pdf_name, state,
     created_at, created_by, version, lift_seq, needs_clearance, cleared_at, cleared_by,
     cancelled_at, cancelled_by, cancel_reason, purged_at, expect_text, link_check,
     released_by, released_at) = row  # fmt: skip
    return Pack(
        id=pack_id,
        title=title,
        reference=reference,
        url=url,
        classification=Classification(marking),
        contact=contact,
        lift_at=from_storage(lift_at),
        list_keys=split_keys(list_keys),
        pdf_name=pdf_name,
        state=PackState(state),
        created_at=from_storage(created_at),
        created_by=created_by,
        version=version,
        lift_seq=lift_seq,
        needs_clearance=bool(needs_clearance),
        cleared_at=optional_time(cleared_at),
        cleared_by=cleared_by,
        cancelled_at=optional_time(cancelled_at),
        cancelled_by=cancelled_by,
        cancel_reason=cancel_reason,
        purged_at=optional_time(purged_at),
        expect_text=expect_text,
        link_check=bool(link_check),
        released_by=released_by,
        released_at=optional_time(released_at),
    )


def version(row: Row) -> PackVersion:
    pack_id, number, title, url, pdf_name, changed, note, changed_by, changed_at = row
    return PackVersion(
        pack_id=pack_id,
        version=number,
        title=title,
        url=url,
        pdf_name=pdf_name,
        changed=split_keys(changed),
        note=note,
        changed_by=changed_by,
        changed_at=from_storage(changed_at),
    )


def stage(row: Row) -> Stage:
    (stage_id, pack_id, kind, due_at, state, started_at, finished_at, detail, owner, lease_until,
     list_keys, wave, base_lift_seq, base_version, old_lift_at, test_address,
     test_of, report_of) = row  # fmt: skip
    return Stage(
        id=stage_id,
        pack_id=pack_id,
        kind=StageKind(kind),
        due_at=from_storage(due_at),
        state=StageState(state),
        started_at=optional_time(started_at),
        finished_at=optional_time(finished_at),
        detail=detail,
        owner=owner,
        lease_until=optional_time(lease_until),
        list_keys=split_keys(list_keys),
        wave=wave,
        base_lift_seq=base_lift_seq,
        base_version=base_version,
        old_lift_at=optional_time(old_lift_at),
        test_address=test_address,
        test_of=tuple(StageKind(kind) for kind in split_keys(test_of)),
        report_of=report_of,
    )


def delivery(row: Row) -> Delivery:
    (stage_id, pack_id, kind, email, name, list_key, message_id, state, reply, attempts,
     created_at, updated_at, version_number, lift_seq, next_attempt_at,
     certificate, verp_token, bounce_status, bounce_diagnostic, bounced_at, delay_status,
     delay_diagnostic, delayed_at) = row  # fmt: skip
    return Delivery(
        stage_id=stage_id,
        pack_id=pack_id,
        kind=StageKind(kind),
        email=email,
        name=name,
        list_key=list_key,
        message_id=message_id,
        state=DeliveryState(state),
        reply=reply,
        attempts=attempts,
        created_at=from_storage(created_at),
        updated_at=from_storage(updated_at),
        version=version_number,
        lift_seq=lift_seq,
        next_attempt_at=optional_time(next_attempt_at),
        certificate=certificate,
        verp_token=verp_token,
        bounce=server_report(bounce_status, bounce_diagnostic, bounced_at),
        delay=server_report(delay_status, delay_diagnostic, delayed_at),
    )


def server_report(
    status: str | None, diagnostic: str | None, at: str | None
) -> ServerReport | None:
    if status is None or at is None:
        return None
    return ServerReport(status=status, diagnostic=diagnostic or "", at=from_storage(at))


def attempt(row: Row) -> Attempt:
    stage_id, email, number, at, outcome, code, reply = row
    return Attempt(
        stage_id=stage_id,
        email=email,
        number=number,
        at=from_storage(at),
        outcome=OutcomeKind(outcome),
        code=code,
        reply=reply,
    )
