"""RFC 3339 timestamps in UTC, the only time format of the contract (`2026-11-26T12:00:00.123456Z`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def format_time(moment: datetime) -> str:
    """Render an aware datetime as UTC with microseconds and a `Z` suffix."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 date-time (at most microsecond precision) into an aware UTC datetime.

    Raises ValueError for anything else, including the looser forms `datetime.fromisoformat` accepts.
    """
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    return datetime.fromisoformat(text).astimezone(UTC)
