"""Reading typed times and writing readable ones: London clock changes, words, storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from embargo_bot.domain.errors import InputError
from embargo_bot.domain.times import (
    describe,
    describe_short,
    describe_span,
    from_storage,
    parse_when,
    to_storage,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int, minute: int, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --- parse_when -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ISO 8601 with an offset: the offset wins over the zone.
        ("2022-02-23T11:00+00:00", utc(2022, 2, 23, 11, 0)),
        ("2022-02-23T11:00:00Z", utc(2022, 2, 23, 11, 0)),
        ("2022-06-23T11:00+01:00", utc(2022, 6, 23, 10, 0)),
        ("2022-02-23T11:00+05:30", utc(2022, 2, 23, 5, 30)),
        ("2022-02-23 11:00-05:00", utc(2022, 2, 23, 16, 0)),
        # Local London time: GMT in winter, BST in summer.
        ("2022-02-23 11:00", utc(2022, 2, 23, 11, 0)),
        ("2022-06-23 11:00", utc(2022, 6, 23, 10, 0)),
        ("2022-06-23T11:00", utc(2022, 6, 23, 10, 0)),
        ("  2022-06-23 11:00  ", utc(2022, 6, 23, 10, 0)),
        ("2022-02-23 11:00:30", utc(2022, 2, 23, 11, 0, 30)),
        # Either side of the spring-forward gap (01:00-02:00 on 27 March 2022).
        ("2022-03-27 00:59", utc(2022, 3, 27, 0, 59)),
        ("2022-03-27 02:00", utc(2022, 3, 27, 1, 0)),
        # Either side of the fall-back repeat (01:00-02:00 on 30 October 2022).
        ("2022-10-30 00:30", utc(2022, 10, 29, 23, 30)),
        ("2022-10-30 02:00", utc(2022, 10, 30, 2, 0)),
        # An explicit offset settles which 01:30 is meant.
        ("2022-10-30T01:30+01:00", utc(2022, 10, 30, 0, 30)),
        ("2022-10-30T01:30+00:00", utc(2022, 10, 30, 1, 30)),
    ],
)
def test_parse_when_gives_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_when(text, LONDON, field="--lift")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "zone", "fragments"),
    [
        ("2022-03-27 01:30", LONDON, ("does not exist in Europe/London", "clocks go forward")),
        ("2022-03-27 01:00", LONDON, ("does not exist in Europe/London",)),
        ("2022-10-30 01:30", LONDON, ("happens twice in Europe/London", "clocks go back")),
        ("2022-10-30 01:00", LONDON, ("happens twice in Europe/London",)),
        ("2022-03-13 02:30", NEW_YORK, ("does not exist in America/New_York",)),
        ("2022-11-06 01:30", NEW_YORK, ("happens twice in America/New_York",)),
        ("garbage", LONDON, ("'garbage' is not a time", "YYYY-MM-DD HH:MM")),
        ("2022-02-23", LONDON, ("'2022-02-23' is not a time",)),
        ("11:00", LONDON, ("is not a time",)),
        ("2022-02-30 11:00", LONDON, ("is not a time",)),
        ("2022-02-23 25:00", LONDON, ("is not a time",)),
        ("20220223T1100", LONDON, ("is not a time",)),
        ("tomorrow 11am", LONDON, ("is not a time",)),
        ("", LONDON, ("give a time",)),
        ("   ", LONDON, ("give a time",)),
    ],
)
def test_parse_when_refuses_naming_the_field(
    text: str, zone: ZoneInfo, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(InputError) as caught:
        parse_when(text, zone, field="--notice-at")
    message = str(caught.value)
    assert message.startswith("--notice-at: ")
    for fragment in fragments:
        assert fragment in message


# --- describe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2022, 2, 23, 11, 0), "11:00 GMT on Wednesday 23 February 2022"),
        (utc(2022, 6, 23, 10, 0), "11:00 BST on Thursday 23 June 2022"),
        (utc(2022, 2, 1, 9, 5), "09:05 GMT on Tuesday 1 February 2022"),
        # A BST evening that is the next calendar day in London.
        (utc(2022, 6, 30, 23, 30), "00:30 BST on Friday 1 July 2022"),
        (utc(2022, 6, 23, 10, 0, 5), "11:00:05 BST on Thursday 23 June 2022"),
        (utc(2022, 2, 23, 11, 0, 59), "11:00:59 GMT on Wednesday 23 February 2022"),
        (datetime(2022, 6, 23, 11, 0, tzinfo=LONDON), "11:00 BST on Thursday 23 June 2022"),
        (
            datetime(2022, 2, 23, 6, 0, tzinfo=NEW_YORK),
            "11:00 GMT on Wednesday 23 February 2022",
        ),
    ],
)
def test_describe(moment: datetime, expected: str) -> None:
    assert describe(moment, LONDON) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2022, 2, 23, 11, 0), "2022-02-23 11:00 GMT"),
        (utc(2022, 6, 23, 10, 0), "2022-06-23 11:00 BST"),
        (utc(2022, 6, 23, 10, 0, 5), "2022-06-23 11:00:05 BST"),
    ],
)
def test_describe_short(moment: datetime, expected: str) -> None:
    assert describe_short(moment, LONDON) == expected


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(milliseconds=900), "0s"),
        (timedelta(milliseconds=-900), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(minutes=4, seconds=10), "4m 10s"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=1, minutes=1, seconds=1), "1h 1m"),
        (timedelta(days=2, hours=3, minutes=5), "2d 3h"),
        (timedelta(days=1, minutes=30), "1d 30m"),
        (timedelta(days=400), "400d"),
        (-timedelta(minutes=4, seconds=10), "-4m 10s"),
        (-timedelta(days=2, hours=3), "-2d 3h"),
    ],
)
def test_describe_span(delta: timedelta, expected: str) -> None:
    assert describe_span(delta) == expected


# --- storage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "stored"),
    [
        (utc(2022, 2, 23, 11, 0), "2022-02-23T11:00:00.000000Z"),
        (utc(2022, 2, 23, 11, 0, 0, 123456), "2022-02-23T11:00:00.123456Z"),
        (datetime(2022, 6, 23, 11, 0, tzinfo=LONDON), "2022-06-23T10:00:00.000000Z"),
        (datetime(2022, 2, 23, 11, 0, tzinfo=NEW_YORK), "2022-02-23T16:00:00.000000Z"),
    ],
)
def test_storage_round_trip(moment: datetime, stored: str) -> None:
    assert to_storage(moment) == stored
    back = from_storage(stored)
    assert back == moment
    assert back.tzinfo is UTC


def test_to_storage_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_storage(datetime(2022, 2, 23, 11, 0))  # noqa: DTZ001


def test_storage_strings_sort_in_time_order() -> None:
    moments = [
        datetime(2022, 2, 23, 11, 0, tzinfo=ZoneInfo("Asia/Kolkata")),  # 05:30Z
        utc(2022, 2, 23, 6, 0),
        utc(2022, 2, 23, 6, 0, 0, 1),
        datetime(2022, 2, 23, 2, 0, tzinfo=NEW_YORK),  # 07:00Z
        utc(2022, 2, 23, 10, 59, 59, 999999),
        utc(2022, 2, 23, 11, 0),
        datetime(2022, 10, 30, 1, 30, fold=0, tzinfo=LONDON),  # 00:30Z, BST
        datetime(2022, 10, 30, 1, 30, fold=1, tzinfo=LONDON),  # 01:30Z, GMT
        utc(2023, 1, 1, 0, 0),
    ]
    # Listed in time order, though not in local wall-clock order; sort from reversed.
    assert sorted(moments) == moments
    backwards = moments[::-1]
    assert sorted(backwards, key=to_storage) == moments
    assert sorted(to_storage(m) for m in backwards) == [to_storage(m) for m in moments]
