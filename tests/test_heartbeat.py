"""The heartbeat's rules: pure, with an injected time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from embargo_bot.delivery.heartbeat import GONE_AFTER, Beat, decode, encode, other_instance

NOW = datetime(2030, 2, 23, 11, 0, tzinfo=UTC)


def test_a_beat_round_trips() -> None:
    beat = Beat(owner="host:12:abcd", at=NOW)
    assert decode(encode(beat)) == beat


def test_nothing_cleared_or_garbled_means_nobody() -> None:
    assert decode(None) is None and decode(b"") is None and decode(b"{not json") is None


def test_only_another_recent_instance_counts() -> None:
    beat = Beat(owner="host:12:abcd", at=NOW)
    assert other_instance(beat, me="host:13:ef01", now=NOW + timedelta(seconds=4)) == beat
    assert other_instance(beat, me="host:12:abcd", now=NOW) is None
    assert other_instance(beat, me="host:13:ef01", now=NOW + GONE_AFTER * 2) is None
