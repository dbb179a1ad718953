"""What the store keeps of a pack's link checks: the latest per watch, and the alerts sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Watch(StrEnum):
    EARLY = "early"  # from 10 minutes before the lift: is the page out already?
    LIVE = "live"  # from the lift: the live email waits for the page


# The alerts a watch can have sent (at most once each).
EARLY_ALERT = "early"


@dataclass(frozen=True)
class LinkWatch:
    pack_id: str
    watch: Watch
    checked_at: datetime  # when the latest check started
    seen: str  # in words, e.g. "HTTP 404"
    status: int | None
    live: bool
    checks: int  # how many checks this watch has made
    alerts: tuple[str, ...] = ()  # "early", "not-live", "wait-ran-out"


@dataclass(frozen=True)
class SeenCheck:
    """One check to record: the store's view of a link_check.LinkCheck."""

    checked_at: datetime
    seen: str
    status: int | None
    live: bool
