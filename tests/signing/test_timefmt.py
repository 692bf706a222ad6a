from datetime import UTC, datetime, timedelta, timezone

import pytest

from signing.timefmt import format_time, parse_time


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
