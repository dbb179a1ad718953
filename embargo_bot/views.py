"""How packs look to people (rich tables) and to programs (JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from embargo_bot.actions import PackStatus
from embargo_bot.packs import Delivery, DeliveryState, Pack, StageKind, StageState
from embargo_bot.recipients import ListCatalogue
from embargo_bot.times import describe, describe_short, describe_span, to_storage

_STATE_STYLES = {
    StageState.SCHEDULED: "cyan",
    StageState.SENDING: "yellow",
    StageState.DONE: "green",
    StageState.SKIPPED: "magenta",
    StageState.CANCELLED: "red",
    StageState.FAILED: "bold red",
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
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "stage": delivery.kind.value,
        "email": delivery.email,
        "name": delivery.name,
        "list": delivery.list_key,
        "state": delivery.state.value,
        "reply": delivery.reply,
        "attempts": delivery.attempts,
        "message_id": delivery.message_id,
        "updated_at": _iso(delivery.updated_at),
    }


def status_json(status: PackStatus, *, now: datetime, with_deliveries: bool) -> dict[str, Any]:
    next_stage = status.next_send()
    document = pack_json(status.pack)
    document["next_send"] = (
        None
        if next_stage is None
        else {
            "stage": next_stage.kind.value,
            "at": _iso(next_stage.due_at),
            "in_seconds": round((next_stage.due_at - now).total_seconds(), 1),
        }
    )
    document["stages"] = [
        {
            "stage": item.stage.kind.value,
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
        }
        for item in status.stages
    ]
    if with_deliveries:
        document["deliveries"] = [delivery_json(d) for d in status.deliveries]
    return document


def _styled(state: StageState | DeliveryState) -> Text:
    return Text(state.value, style=_STATE_STYLES.get(state, ""))


def packs_table(statuses: list[PackStatus], *, now: datetime, zone: ZoneInfo) -> Table:
    table = Table(title="Packs", title_justify="left")
    for column in ("Pack", "Title", "Marking", "State", "Lifts", "Next send", "In"):
        table.add_column(column)
    for status in statuses:
        pack, next_stage = status.pack, status.next_send()
        table.add_row(
            pack.id,
            pack.title,
            pack.classification.value,
            pack.state.value,
            describe_short(pack.lift_at, zone),
            "-"
            if next_stage is None
            else f"{next_stage.kind} {describe_short(next_stage.due_at, zone)}",
            "-" if next_stage is None else describe_span(next_stage.due_at - now),
        )
    return table


def status_view(status: PackStatus, *, now: datetime, zone: ZoneInfo) -> RenderableType:
    pack = status.pack
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in (
        ("Pack", pack.id),
        ("Title", pack.title),
        ("Reference", pack.reference or "-"),
        ("Marking", pack.classification.value),
        ("Lifts", f"{describe(pack.lift_at, zone)} ({describe_span(pack.lift_at - now)} from now)"),
        ("Live link", pack.url),
        ("Lists", ", ".join(pack.list_keys)),
        ("Contact", pack.contact),
        ("State", pack.state.value),
        ("Queued", f"{describe(pack.created_at, zone)} by {pack.created_by}"),
    ):
        facts.add_row(label, value)

    stages = Table(title="Stages", title_justify="left")
    for column in ("Stage", "State", "Due", "Sent", "Failed", "Pending", "Detail"):
        stages.add_column(column)
    for item in status.stages:
        stages.add_row(
            item.stage.kind.value,
            _styled(item.stage.state),
            describe_short(item.stage.due_at, zone),
            str(item.summary.sent),
            str(item.summary.failed),
            str(item.summary.pending),
            item.stage.detail or "",
        )

    recipients = Table(title="Recipients", title_justify="left")
    for column in ("Recipient", "List", "Notice", "Live", "Server's reply"):
        recipients.add_column(column)
    by_address: dict[str, dict[StageKind, Delivery]] = {}
    for delivery in status.deliveries:
        by_address.setdefault(delivery.email, {})[delivery.kind] = delivery
    for address, stages_of in by_address.items():
        first = next(iter(stages_of.values()))
        latest = stages_of.get(StageKind.LIVE) or first
        recipients.add_row(
            address,
            first.list_key,
            *(
                _styled(stages_of[kind].state) if kind in stages_of else Text("-")
                for kind in (StageKind.NOTICE, StageKind.LIVE)
            ),
            latest.reply or "",
        )
    parts: list[RenderableType] = [facts, stages]
    if by_address:
        parts.append(recipients)
    return Group(*parts)


def catalogue_table(catalogue: ListCatalogue) -> Table:
    table = Table(title=f"Recipient lists in {catalogue.directory}", title_justify="left")
    for column in ("List", "Name", "Cleared to", "Domains", "Recipients"):
        table.add_column(column)
    for key, recipient_list in catalogue.lists.items():
        table.add_row(
            key,
            recipient_list.name,
            recipient_list.max_classification.value,
            ", ".join(recipient_list.allowed_domains),
            str(len(recipient_list.recipients)),
        )
    return table
