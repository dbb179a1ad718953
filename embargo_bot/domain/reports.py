"""How a stage went: the figures the delivery report and ``show`` give the official."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from embargo_bot.domain.packs import Delivery, DeliveryState, Stage, StageState


@dataclass(frozen=True)
class Failure:
    email: str
    reply: str


@dataclass(frozen=True)
class StageReport:
    label: str
    due_at: datetime
    state: str
    detail: str | None
    recipients: int
    sent: int
    failed: int
    pending: int
    first_after: timedelta | None  # first message accepted, after the stage's time
    last_after: timedelta | None
    failures: tuple[Failure, ...]
    # Recipients never sent this message (e.g. their list was invalid until the lift).
    not_sent: tuple[Failure, ...] = ()
    # False whenever anyone named for the stage may not have its message.
    everyone_reached: bool = False
    slowest: str | None = None  # who was accepted last (at ``last_after``)
    bounced: int = 0  # accepted by the relay, then refused by the partner's server
    bounces: tuple[Failure, ...] = ()


# Stage notes that mean some lists' partners were not sent the stage's message.
LEFT_OUT_NOTES = ("lists left out", "lists held")


def summarise(stage: Stage, deliveries: Sequence[Delivery]) -> StageReport:
    sent = sorted(
        (d for d in deliveries if d.state is DeliveryState.SENT), key=lambda d: d.updated_at
    )
    accepted = [d.updated_at for d in sent]
    left_out = any(note in (stage.detail or "") for note in LEFT_OUT_NOTES)
    return StageReport(
        label=stage.label,
        due_at=stage.due_at,
        state=stage.state.value,
        detail=stage.detail,
        recipients=len(deliveries),
        sent=len(sent),
        failed=sum(d.state is DeliveryState.FAILED for d in deliveries),
        pending=sum(d.state is DeliveryState.PENDING for d in deliveries),
        first_after=accepted[0] - stage.due_at if accepted else None,
        last_after=accepted[-1] - stage.due_at if accepted else None,
        failures=tuple(
            Failure(email=d.email, reply=d.reply or "no reply recorded")
            for d in deliveries
            if d.state is DeliveryState.FAILED
        ),
        not_sent=tuple(
            Failure(email=d.email, reply=d.reply or "not sent")
            for d in deliveries
            if d.state is DeliveryState.CANCELLED
        ),
        slowest=sent[-1].email if sent else None,
        everyone_reached=(
            stage.state is StageState.DONE and not left_out and len(sent) == len(deliveries)
        ),
        bounced=sum(d.state is DeliveryState.BOUNCED for d in deliveries),
        bounces=tuple(
            Failure(email=d.email, reply=d.bounce.words)
            for d in deliveries
            if d.state is DeliveryState.BOUNCED and d.bounce is not None
        ),
    )


def lateness(delivery: Delivery, stage: Stage) -> timedelta | None:
    """How long after its stage's time a message was accepted."""
    if delivery.state is not DeliveryState.SENT:
        return None
    return delivery.updated_at - stage.due_at


def describe_offset(offset: timedelta | None) -> str:
    """'+0.012s', '+4m 10s': a short, signed time after the stage's time."""
    if offset is None:
        return "-"
    seconds = offset.total_seconds()
    if abs(seconds) < 60:
        return f"{seconds:+.3f}s"
    minutes, rest = divmod(int(abs(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{hours}h {minutes}m" if hours else f"{sign}{minutes}m {rest}s"


def estimate(messages: int, per_minute: int | None) -> timedelta | None:
    """How long a stage of ``messages`` takes under the relay's rate limit (None: no limit).

    Messages, not recipients: the limit counts what is handed to the relay, and
    with EMBARGO_BOT_SMTP_MAX_RECIPIENTS above 1 a message carries several.
    """
    if per_minute is None or messages <= 0:
        return None
    return timedelta(minutes=messages / per_minute)
