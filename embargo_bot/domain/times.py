"""Reading times people type, and writing times people read.

Everything is stored and compared in UTC; people see the configured zone
(Europe/London by default, so GMT in winter and BST in summer).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from embargo_bot.domain.errors import InputError


def parse_when(text: str, zone: ZoneInfo, *, field: str) -> datetime:
    """An aware UTC datetime from ISO 8601 with an offset, or a local time in ``zone``.

    A local time that a clock change skips (01:30 on the last Sunday of March in
    London) or repeats (01:30 on the last Sunday of October) is refused: guessing
    which one the official meant could move an embargo by an hour.
    """
    cleaned = text.strip()
    if not cleaned:
        raise InputError(f"{field}: give a time such as '2022-02-23 11:00'")
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        parsed = None
    if parsed is None or len(cleaned) < len("YYYY-MM-DD HH:MM"):
        raise InputError(
            f"{field}: {text!r} is not a time; use 'YYYY-MM-DD HH:MM' "
            f"(read as {zone.key}) or ISO 8601 with an offset, e.g. 2022-02-23T11:00+00:00"
        )
    try:
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        return _localise(parsed, zone, field=field, text=text)
    except OverflowError:
        # 9999-12-31T23:59-01:00 is past the last moment Python can hold in UTC.
        raise InputError(f"{field}: {text!r} is outside the years 1 to 9999") from None


def _localise(naive: datetime, zone: ZoneInfo, *, field: str, text: str) -> datetime:
    earlier = naive.replace(tzinfo=zone, fold=0)
    later = naive.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        round_trip = earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != naive:
            raise InputError(
                f"{field}: {text!r} does not exist in {zone.key}: the clocks go forward "
                "over it. Choose a time outside the change, or give an offset."
            )
        raise InputError(
            f"{field}: {text!r} happens twice in {zone.key}: the clocks go back over it. "
            "Give an explicit offset, e.g. +01:00 for the first or +00:00 for the second."
        )
    return earlier.astimezone(UTC)


def describe(moment: datetime, zone: ZoneInfo) -> str:
    """'11:00 GMT on Wednesday 23 February 2022': the form used in every email."""
    local = moment.astimezone(zone)
    return f"{_clock_time(local)} {local.tzname()} on {local:%A} {local.day} {local:%B %Y}"


def _clock_time(local: datetime) -> str:
    # Seconds only when set: an embargo stated to the minute must not hide them.
    if local.second or local.microsecond:
        return f"{local:%H:%M:%S}"
    return f"{local:%H:%M}"


def describe_clock(moment: datetime, zone: ZoneInfo) -> str:
    """'11:00 GMT': the time of day alone, for "(link at 11:00 GMT)"."""
    local = moment.astimezone(zone)
    return f"{_clock_time(local)} {local.tzname()}"


def describe_short(moment: datetime, zone: ZoneInfo) -> str:
    """'2022-02-23 11:00 GMT': for tables."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d} {_clock_time(local)} {local.tzname()}"


def describe_span(delta: timedelta) -> str:
    """A rough length of time for a countdown: '2d 3h', '4m 10s', '0s'."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return sign + (" ".join(shown) if shown else "0s")


def to_storage(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds: sorts as text, so the store can compare it."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_storage(text: str) -> datetime:
    # fromisoformat is C and reads the "Z": strptime here cost ~20 ms per 1,000
    # deliveries read, all of it between the lift and the first live email.
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"stored time without a zone: {text!r}")
    return moment


# Every part that needs the time takes one of these, so tests can set it.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
