"""RFC 3339 times in UTC with a ``Z`` suffix, the only time format of the contract
(``2026-11-26T12:00:00.123456Z``): the one place that writes and reads them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def format_time(moment: datetime) -> str:
    """``2026-11-26T08:30:00.000000Z``: always microseconds, always UTC; a naive datetime is refused
    with ValueError (times must carry a time zone)."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError("naive datetime: times must carry a time zone")
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: object) -> datetime:
    """Parses an RFC 3339 date-time (at most microsecond precision) into an aware UTC datetime.

    Raises ValueError for anything else, including the looser forms `datetime.fromisoformat` accepts, a
    time without an offset or ``Z``, and a time whose offset carries it outside the years 1-9999 in UTC
    (``0001-01-01T00:00:00+01:00``).
    """
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"not an RFC 3339 date-time: {text[:64]!r}" if isinstance(text, str) else "not a string")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} lies outside the years 1-9999 in UTC") from None


def utcnow() -> datetime:
    return datetime.now(UTC)
