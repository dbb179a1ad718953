"""The things embargo-bot keeps: packs, their versions, stages and deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.outcomes import OutcomeKind


class StageKind(StrEnum):
    """A kind of email; its value is the ``X-Embargo-Stage`` header."""

    NOTICE = "notice"  # the embargoed pack, one stage per wave, before the lift
    LIVE = "live"  # the public link, at the lift
    CHANGED = "changed"  # the lift moved: to those who hold the notice
    UPDATED = "updated"  # the material was amended: to those who hold the notice
    WITHDRAWN = "withdrawn"  # the pack was withdrawn: to those who hold the notice
    TEST = "test"  # an official's check, to one address on a list
    REPORT = "report"  # to the pack's contact: how a stage went
    ALERT = "alert"  # to the pack's contact at once: a wave is held back by a broken list


# Recipients of these hold the embargoed material (and know a lift time).
HOLDING_KINDS = (StageKind.NOTICE, StageKind.UPDATED, StageKind.CHANGED)
# Sent to holders when something happens, not at a planned time.
FOLLOW_UP_KINDS = (StageKind.CHANGED, StageKind.UPDATED, StageKind.WITHDRAWN)


class StageState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    SKIPPED = "skipped"  # e.g. a notice whose lift had passed before it could go
    CANCELLED = "cancelled"
    FAILED = "failed"  # could not start, e.g. no list the live email names is valid
    # A notice wave's share for lists invalid at its time: sent once they are
    # valid again, skipped (and reported) if the lift comes first.
    HELD = "held"


OPEN_STAGE_STATES = (StageState.SCHEDULED, StageState.SENDING)


class PackState(StrEnum):
    ACTIVE = "active"
    DONE = "done"
    CANCELLED = "cancelled"  # withdrawn: nothing more goes but the withdrawal


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the pack was withdrawn before this message went


@dataclass(frozen=True)
class Pack:
    """A pack as it stands now: its latest version's title, link and file name."""

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
    version: int = 1
    lift_seq: int = 1  # goes up each time the lift moves
    needs_clearance: bool = False
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    purged_at: datetime | None = None  # its material deleted under EMBARGO_BOT_RETAIN_DAYS

    @property
    def awaiting_clearance(self) -> bool:
        return self.needs_clearance and self.cleared_at is None

    @property
    def calendar_sequence(self) -> int:
        """RFC 5545 SEQUENCE: rises with every change partners are told of."""
        return (self.lift_seq - 1) + (self.version - 1)


@dataclass(frozen=True)
class PackContent:
    """The embargoed material itself: only ever held decrypted in memory."""

    pdf: bytes
    release: str
    social: str | None


@dataclass(frozen=True)
class PackVersion:
    pack_id: str
    version: int
    title: str
    url: str
    pdf_name: str
    changed: tuple[str, ...]  # what this version changed: "pdf", "release", ...
    note: str | None
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True)
class NewStage:
    kind: StageKind
    due_at: datetime
    list_keys: tuple[str, ...] = ()
    wave: int | None = None
    base_lift_seq: int | None = None  # changed: to holders told this lift
    base_version: int | None = None  # updated: to holders of this version
    old_lift_at: datetime | None = None  # changed: the lift they were told
    test_address: str | None = None
    test_of: tuple[StageKind, ...] = ()
    report_of: int | None = None
    held: bool = False  # stored as HELD, not SCHEDULED: waits for its lists, not a time


@dataclass(frozen=True)
class MovedWave:
    """A notice wave not yet started, with its new time and the lists it keeps."""

    stage_id: int
    due_at: datetime
    list_keys: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    id: int
    pack_id: str
    kind: StageKind
    due_at: datetime
    state: StageState
    started_at: datetime | None
    finished_at: datetime | None
    detail: str | None
    owner: str | None
    lease_until: datetime | None
    list_keys: tuple[str, ...] = ()
    wave: int | None = None
    base_lift_seq: int | None = None
    base_version: int | None = None
    old_lift_at: datetime | None = None
    test_address: str | None = None
    test_of: tuple[StageKind, ...] = ()
    report_of: int | None = None

    @property
    def label(self) -> str:
        if self.wave is not None:
            return f"notice wave {self.wave}"
        if self.kind is StageKind.ALERT:
            return "alert"
        if self.report_of is not None:
            return "delivery report"
        return self.kind.value


@dataclass(frozen=True)
class NewDelivery:
    email: str
    name: str | None
    list_key: str
    message_id: str
    certificate: str | None = None  # S/MIME certificate to encrypt to


@dataclass(frozen=True)
class Delivery:
    stage_id: int
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
    version: int | None = None  # the material version the message carried
    lift_seq: int | None = None  # the lift the message stated
    next_attempt_at: datetime | None = None  # set while a temporary failure waits a retry
    certificate: str | None = None  # S/MIME certificate to encrypt to


@dataclass(frozen=True)
class Attempt:
    """One try at handing a message to the relay, and what the relay said."""

    stage_id: int
    email: str
    number: int
    at: datetime
    outcome: OutcomeKind
    code: int | None
    reply: str


@dataclass(frozen=True)
class Holder:
    """Someone who holds the embargoed material, and what they were last told."""

    email: str
    name: str | None
    list_key: str
    version: int
    lift_seq: int


def marking_for(pack: Pack, kind: StageKind) -> str:
    """The classification an email carries: once public, the link and the news are OFFICIAL."""
    return "OFFICIAL" if kind is StageKind.LIVE else pack.classification.value
