"""RFC 3339 times in UTC with a ``Z`` suffix, as the contract writes them."""

from __future__ import annotations

from datetime import datetime, timezone


def format_time(moment: datetime) -> str:
    """``2026-11-26T08:30:00.000000Z``: always microseconds, always UTC."""
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Parses an RFC 3339 time with an offset or ``Z``; a naive time is refused with ValueError."""
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time needs an offset or Z")
    return moment.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
