"""RFC 3339 times in UTC with a ``Z`` suffix, as the contract writes them."""

from __future__ import annotations

from datetime import datetime, timezone


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parses an RFC 3339 time with an offset or ``Z``; a naive time is refused with ValueError."""
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time needs an offset or Z")
    return moment.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
