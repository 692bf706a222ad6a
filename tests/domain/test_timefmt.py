"""Times as the contract writes them: RFC 3339, UTC, ``Z``, always six fractional digits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.timefmt import format_time, parse_time


def test_format_time_writes_utc_with_microseconds_whatever_the_offset() -> None:
    assert format_time(datetime(2026, 11, 26, 8, 30, tzinfo=UTC)) == "2026-11-26T08:30:00.000000Z"
    beijing = timezone(timedelta(hours=8))
    assert format_time(datetime(2026, 11, 27, 0, 0, 0, 5, tzinfo=beijing)) == "2026-11-26T16:00:00.000005Z"


def test_format_time_agrees_with_strftime_and_round_trips() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=rnd.randrange(10**16))
        offset = timezone(timedelta(minutes=rnd.randrange(-14 * 60, 14 * 60 + 1)))
        local = moment.astimezone(offset)
        assert format_time(local) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert parse_time(format_time(local)) == moment


def test_format_is_utc_with_microseconds_and_z():
    moment = datetime(2026, 11, 26, 20, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert format_time(moment) == "2026-11-26T12:00:00.123456Z"
    assert parse_time(format_time(moment)) == moment


def test_parse_accepts_rfc3339_forms():
    assert parse_time("2026-11-26T12:00:00Z") == datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert parse_time("2026-11-26T20:00:00.5+08:00") == datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=UTC)
    assert parse_time("2026-11-26T12:00:00Z").tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["2026-11-26", "2026-11-26 12:00:00Z", "2026-11-26T12:00:00", "2026-13-01T00:00:00Z",
     "2026-11-26T12:00:00.1234567Z", "20261126T120000Z", "", None, 1700000000],
)  # fmt: skip
def test_parse_rejects_everything_else(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        format_time(datetime(2026, 11, 26))
