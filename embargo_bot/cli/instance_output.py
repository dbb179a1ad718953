"""How the running service instances look: `embargo-bot status`, for people and programs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from embargo_bot.cli.records import Field, Records
from embargo_bot.domain.times import describe_short, to_storage
from embargo_bot.store import InstanceStatus


def instance_json(instance: InstanceStatus, *, now: datetime) -> dict[str, Any]:
    return {
        "id": instance.id,
        "host": instance.host,
        "pid": instance.pid,
        "started_at": to_storage(instance.started_at),
        "heartbeat_at": to_storage(instance.heartbeat_at),
        "heartbeat_seconds_ago": round((now - instance.heartbeat_at).total_seconds(), 1),
        "holds": [
            {"stage_id": stage.id, "pack": stage.pack_id, "stage": stage.label}
            for stage in instance.holds
        ],
    }


def instances_table(live: list[InstanceStatus], *, now: datetime, zone: ZoneInfo) -> Records:
    table = Records(
        "Service instances on this store",
        [
            Field("Instance"),
            Field("Started"),
            Field("Last heartbeat"),
            Field("Sending", wraps=True),
        ],
    )
    for instance in live:
        ago = max(0.0, (now - instance.heartbeat_at).total_seconds())
        table.add_row(
            instance.id,
            describe_short(instance.started_at, zone),
            f"{ago:.1f}s ago",
            "; ".join(f"{stage.pack_id}: {stage.label}" for stage in instance.holds) or "-",
        )
    return table
