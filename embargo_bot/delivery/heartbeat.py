"""Which service instances are running on a store: a heartbeat each writes, read at start.

Minimal on purpose: one ``meta`` row holding the last writer and when, so a
second ``run`` on the same store can say so. Two instances are safe (every
stage is claimed with a conditional update), so this is a warning for the
operator, never a refusal. A table of instances is the store port's to add.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

HEARTBEAT = "service_heartbeat"
# How often a running service says it is alive, and when silence means it has gone.
BEAT_EVERY = timedelta(seconds=5)
GONE_AFTER = BEAT_EVERY * 3


@dataclass(frozen=True)
class Beat:
    owner: str  # host:pid:nonce, as stage claims record it
    at: datetime


def encode(beat: Beat) -> bytes:
    return json.dumps({"owner": beat.owner, "at": beat.at.isoformat()}).encode()


def decode(raw: bytes | None) -> Beat | None:
    """The last heartbeat, or None if there is none (or it was cleared at a clean stop)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Beat(owner=str(data["owner"]), at=datetime.fromisoformat(data["at"]))
    except (ValueError, KeyError, TypeError):
        return None  # a hand-edited row says nothing about who is running


def other_instance(beat: Beat | None, *, me: str, now: datetime) -> Beat | None:
    """Another instance that beat recently, if any."""
    if beat is None or beat.owner == me or now - beat.at > GONE_AFTER:
        return None
    return beat
