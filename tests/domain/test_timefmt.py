"""Times as the contract writes them: RFC 3339, UTC, ``Z``, always six fractional digits."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from domain.timefmt import format_time, parse_time


def test_format_time_writes_utc_with_microseconds_whatever_the_offset() -> None:
    assert format_time(datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc)) == "2026-11-26T08:30:00.000000Z"
    beijing = timezone(timedelta(hours=8))
    assert format_time(datetime(2026, 11, 27, 0, 0, 0, 5, tzinfo=beijing)) == "2026-11-26T16:00:00.000005Z"


def test_format_time_agrees_with_strftime_and_round_trips() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        moment = datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=rnd.randrange(10**16))
        offset = timezone(timedelta(minutes=rnd.randrange(-14 * 60, 14 * 60 + 1)))
        local = moment.astimezone(offset)
        assert format_time(local) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert parse_time(format_time(local)) == moment
