"""The things embargo-bot keeps: packs, their stages and each recipient's delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from embargo_bot.classification import Classification


class StageKind(StrEnum):
    NOTICE = "notice"  # the embargoed pack, before the lift
    LIVE = "live"  # the public link, at the lift


class StageState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    SKIPPED = "skipped"  # e.g. a notice whose lift had passed before it could go
    CANCELLED = "cancelled"
    FAILED = "failed"  # could not start, e.g. a list it names became invalid


OPEN_STAGE_STATES = (StageState.SCHEDULED, StageState.SENDING)


class PackState(StrEnum):
    ACTIVE = "active"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the pack was cancelled before this message went


@dataclass(frozen=True)
class Pack:
    id: str
    title: str
    reference: str | None
    url: str
    classification: Classification
    contact: str
    lift_at: datetime
    list_keys: tuple[str, ...]
    pdf_name: str
    state: PackState
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class PackContent:
    """The embargoed material itself: only ever held decrypted in memory."""

    pdf: bytes
    release: str
    social: str | None


@dataclass(frozen=True)
class Stage:
    pack_id: str
    kind: StageKind
    due_at: datetime
    state: StageState
    started_at: datetime | None
    finished_at: datetime | None
    detail: str | None
    owner: str | None
    lease_until: datetime | None


@dataclass(frozen=True)
class NewDelivery:
    email: str
    name: str | None
    list_key: str
    message_id: str


@dataclass(frozen=True)
class Delivery:
    pack_id: str
    kind: StageKind
    email: str
    name: str | None
    list_key: str
    message_id: str
    state: DeliveryState
    reply: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
