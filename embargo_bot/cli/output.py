"""How packs look to people (rich tables) and to programs (JSON)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from embargo_bot.cli.recipient_output import recipient_summary, recipient_table
from embargo_bot.cli.records import Field, Records
from embargo_bot.domain.packs import (
    Delivery,
    DeliveryState,
    Pack,
    PackState,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.domain.reports import describe_offset, lateness
from embargo_bot.domain.times import describe, describe_short, describe_span, to_storage
from embargo_bot.officials.status import PackStatus

if TYPE_CHECKING:
    from embargo_bot.lists.catalogue import ListCatalogue

# A stage this close past its time is being taken by the service, not late.
_DUE_NOW = timedelta(minutes=1)

_STATE_STYLES = {
    StageState.SCHEDULED: "cyan",
    StageState.SENDING: "yellow",
    StageState.DONE: "green",
    StageState.SKIPPED: "magenta",
    StageState.CANCELLED: "red",
    StageState.FAILED: "bold red",
    StageState.HELD: "bold yellow",
    DeliveryState.PENDING: "cyan",
    DeliveryState.SENT: "green",
    DeliveryState.FAILED: "bold red",
    DeliveryState.CANCELLED: "red",
}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else to_storage(moment)


def pack_json(pack: Pack) -> dict[str, Any]:
    return {
        "id": pack.id,
        "title": pack.title,
        "reference": pack.reference,
        "url": pack.url,
        "classification": pack.classification.value,
        "contact": pack.contact,
        "lift_at": _iso(pack.lift_at),
        "lists": list(pack.list_keys),
        "pdf_name": pack.pdf_name,
        "state": pack.state.value,
        "created_at": _iso(pack.created_at),
        "created_by": pack.created_by,
        "version": pack.version,
        "clearance": {
            "needed": pack.needs_clearance,
            "cleared_at": _iso(pack.cleared_at),
            "cleared_by": pack.cleared_by,
        },
        "withdrawn": None
        if pack.cancelled_at is None
        else {
            "at": _iso(pack.cancelled_at),
            "by": pack.cancelled_by,
            "reason": pack.cancel_reason,
        },
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "stage_id": delivery.stage_id,
        "stage": delivery.kind.value,
        "email": delivery.email,
        "name": delivery.name,
        "list": delivery.list_key,
        "state": delivery.state.value,
        "reply": delivery.reply,
        "attempts": delivery.attempts,
        "message_id": delivery.message_id,
        "updated_at": _iso(delivery.updated_at),
        "version": delivery.version,
    }


def status_json(status: PackStatus, *, now: datetime, with_deliveries: bool) -> dict[str, Any]:
    next_stage = status.next_send()
    document = pack_json(status.pack)
    document["next_send"] = (
        None
        if next_stage is None
        else {
            "stage": next_stage.kind.value,
            "label": next_stage.label,
            "at": _iso(next_stage.due_at),
            "in_seconds": round((next_stage.due_at - now).total_seconds(), 1),
        }
    )
    document["stages"] = [
        {
            "id": item.stage.id,
            "stage": item.stage.kind.value,
            "label": item.stage.label,
            "wave": item.stage.wave,
            "lists": list(item.stage.list_keys),
            "state": item.stage.state.value,
            "due_at": _iso(item.stage.due_at),
            "started_at": _iso(item.stage.started_at),
            "finished_at": _iso(item.stage.finished_at),
            "detail": item.stage.detail,
            "recipients": item.summary.total,
            "sent": item.summary.sent,
            "failed": item.summary.failed,
            "pending": item.summary.pending,
            "cancelled": item.summary.cancelled,
            "first_accepted_after_seconds": _seconds(item.report.first_after),
            "last_accepted_after_seconds": _seconds(item.report.last_after),
            "takes_seconds": _seconds(item.takes),
            "failures": [{"email": f.email, "reply": f.reply} for f in item.report.failures],
            "report_of": item.stage.report_of,
        }
        for item in status.stages
    ]
    document["versions"] = [
        {
            "version": v.version,
            "title": v.title,
            "changed": list(v.changed),
            "note": v.note,
            "by": v.changed_by,
            "at": _iso(v.changed_at),
        }
        for v in status.versions
    ]
    if with_deliveries:
        stages = {item.stage.id: item.stage for item in status.stages}
        tries: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for attempt in status.attempts:
            tries.setdefault((attempt.stage_id, attempt.email), []).append(
                {
                    "number": attempt.number,
                    "at": _iso(attempt.at),
                    "outcome": attempt.outcome.value,
                    "code": attempt.code,
                    "reply": attempt.reply,
                }
            )
        document["deliveries"] = [
            {
                **delivery_json(d),
                "late_seconds": _seconds(lateness(d, stages[d.stage_id])),
                "next_attempt_at": _iso(d.next_attempt_at),
                "attempt_log": tries.get((d.stage_id, d.email), []),
            }
            for d in status.deliveries
        ]
    return document


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else round(span.total_seconds(), 3)


def _styled(state: StageState | DeliveryState) -> Text:
    return Text(state.value, style=_STATE_STYLES.get(state, ""))


def pack_state_words(pack: Pack) -> str:
    """The one state a person reads: a withdrawn or finished pack awaits nothing."""
    if pack.state is PackState.ACTIVE and pack.awaiting_clearance:
        return "awaiting clearance"
    return pack.state.value


def countdown(pack: Pack, due_at: datetime, now: datetime) -> str:
    """How long until a stage goes; never negative, and saying why a due one waits."""
    left = due_at - now
    waiting = ", awaiting clearance" if pack.awaiting_clearance else ""
    if left > timedelta(0):
        return describe_span(left)
    if -left < _DUE_NOW:
        return f"due now{waiting}"
    return f"overdue by {describe_span(-left)}{waiting}"


def packs_table(statuses: list[PackStatus], *, now: datetime, zone: ZoneInfo) -> Records:
    table = Records(
        "Packs",
        [
            Field("Pack"),
            Field("Title", wraps=True),
            Field("Marking"),
            Field("State"),
            Field("Lifts"),
            Field("Next send", wraps=True),
            Field("In", wraps=True),
        ],
    )
    for status in statuses:
        pack, next_stage = status.pack, status.next_send()
        table.add_row(
            pack.id,
            pack.title,
            pack.classification.value,
            pack_state_words(pack),
            describe_short(pack.lift_at, zone),
            "-"
            if next_stage is None
            else f"{next_stage.label}, {describe_short(next_stage.due_at, zone)}",
            "-" if next_stage is None else countdown(pack, next_stage.due_at, now),
        )
    return table


def timetable(status: PackStatus, *, zone: ZoneInfo) -> Records:
    """Every stage of a pack: waves, live, what partners were told since, and reports."""
    labels = {item.stage.id: item.stage.label for item in status.stages}
    table = Records(
        "Stages",
        [
            Field("Stage"),
            Field("To"),
            Field("Due"),
            Field("State"),
            Field("Sent"),
            Field("Failed"),
            Field("Pending"),
            Field("Accepted after"),
            Field("Takes"),
            Field("Detail", wraps=True),
        ],
    )
    for item in status.stages:
        stage, report = item.stage, item.report
        label = stage.label
        if stage.report_of is not None:
            about = "alert on" if stage.kind is StageKind.ALERT else "report on"
            label = f"{about} {labels.get(stage.report_of, 'a stage')}"
        accepted = (
            "-"
            if report.first_after is None
            else f"{describe_offset(report.first_after)} to {describe_offset(report.last_after)}"
        )
        table.add_row(
            label,
            ", ".join(stage.list_keys) or _audience_words(stage),
            describe_short(stage.due_at, zone),
            _styled(stage.state),
            str(item.summary.sent),
            str(item.summary.failed),
            str(item.summary.pending),
            accepted,
            "-" if item.takes is None else describe_span(item.takes),
            stage.detail or _state_words(stage),
        )
    return table


def _state_words(stage: Stage) -> str:
    if stage.state is StageState.HELD:
        return "held: sent once its lists are valid (`lists check`), if before the lift"
    return ""


def _audience_words(stage: Stage) -> str:
    if stage.kind is StageKind.TEST:
        return stage.test_address or ""
    if stage.kind is StageKind.LIVE:
        return "everyone named"
    if stage.kind in (StageKind.REPORT, StageKind.ALERT):
        return "the contact"
    return "holders of the notice"


def _clearance_words(pack: Pack, zone: ZoneInfo) -> str:
    if not pack.needs_clearance:
        return "not needed"
    if pack.cleared_at is None and pack.state is not PackState.ACTIVE:
        return f"never cleared ({pack.state.value} first)"
    if pack.cleared_at is None:
        return (
            f"AWAITING CLEARANCE: `embargo-bot approve {pack.id}` by someone other than who "
            "queued it"
        )
    return f"cleared by {pack.cleared_by}, {describe(pack.cleared_at, zone)}"


def status_view(
    status: PackStatus, *, now: datetime, zone: ZoneInfo, recipients: bool = False
) -> RenderableType:
    """One pack: its facts, stages and versions; every recipient only if ``recipients``.

    A table row per recipient takes rich seconds for a big list, so by default
    each stage is summed up in one row instead (``show --recipients`` for all).
    """
    pack = status.pack
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")  # a long link folds rather than losing its end
    rows = [
        ("Pack", pack.id),
        ("Title", pack.title),
        ("Reference", pack.reference or "-"),
        ("Marking", pack.classification.value),
        ("Lifts", f"{describe(pack.lift_at, zone)} ({_from_now(pack.lift_at, now)})"),
        ("Live link", pack.url),
        ("Lists", ", ".join(pack.list_keys)),
        ("Contact", pack.contact),
        ("State", pack_state_words(pack)),
        ("Queued", f"{describe(pack.created_at, zone)} by {pack.created_by}"),
        ("Clearance", _clearance_words(pack, zone)),
    ]
    if pack.cancelled_at is not None:
        rows.append(
            (
                "Withdrawn",
                f"{describe(pack.cancelled_at, zone)} by {pack.cancelled_by}: "
                f"{pack.cancel_reason or 'no reason given'}",
            )
        )
    for label, value in rows:
        facts.add_row(label, value)

    versions = Records(
        "Versions",
        [Field("Version"), Field("When"), Field("By"), Field("Changed"), Field("Note", wraps=True)],
    )
    for version in status.versions:
        versions.add_row(
            str(version.version),
            describe_short(version.changed_at, zone),
            version.changed_by,
            ", ".join(version.changed) or "first version",
            version.note or "",
        )

    parts: list[RenderableType] = [facts, timetable(status, zone=zone), versions]
    if status.deliveries:
        parts.append(recipient_table(status) if recipients else recipient_summary(status))
    return Group(*parts)


def catalogue_table(catalogue: ListCatalogue) -> Records:
    table = Records(
        f"Recipient lists in {catalogue.directory}",
        [
            Field("List"),
            Field("Name", wraps=True),
            Field("Cleared to"),
            Field("Domains", wraps=True),
            Field("Recipients"),
        ],
    )
    for key, recipient_list in catalogue.lists.items():
        table.add_row(
            key,
            recipient_list.name,
            recipient_list.max_classification.value,
            ", ".join(recipient_list.allowed_domains),
            str(len(recipient_list.recipients)),
        )
    return table


def _from_now(moment: datetime, now: datetime) -> str:
    if moment >= now:
        return f"{describe_span(moment - now)} from now"
    return f"{describe_span(now - moment)} ago"
