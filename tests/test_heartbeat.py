"""Instances' heartbeats: who else is running, as the service sees it at start."""

from __future__ import annotations

from datetime import UTC, datetime

from embargo_bot.delivery.heartbeat import BEAT_EVERY, GONE_AFTER, others
from embargo_bot.store import InstanceStatus

NOW = datetime(2030, 2, 23, 11, 0, tzinfo=UTC)


def instance(name: str) -> InstanceStatus:
    return InstanceStatus(id=name, host="host", pid=1, started_at=NOW, heartbeat_at=NOW)


def test_only_other_instances_count() -> None:
    me, other = instance("host:12:abcd"), instance("host:13:ef01")
    assert others([me, other], me=me.id) == [other]
    assert others([me], me=me.id) == []


def test_a_dead_instance_is_noticed_within_the_five_seconds_the_lift_allows() -> None:
    # Dead once GONE_AFTER has passed; the next one-second poll resumes its work.
    assert GONE_AFTER >= BEAT_EVERY * 3
    assert GONE_AFTER.total_seconds() + 1 <= 5
