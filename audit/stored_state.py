"""What a verifier can read in an event's stored state and in a proof's payload: the state's JSON when it is
stored in the clear, the event time eventsourcing records in it, and the payload's times."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from domain.timefmt import parse_time


def readable_state(state: bytes) -> dict[str, Any] | None:
    """The stored state as JSON when it is stored in the clear (not encrypted), else None."""
    try:
        value = json.loads(state.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def state_time(state: dict[str, Any]) -> datetime | None:
    """The event time eventsourcing stores in a state: ``{"_type_": "datetime_iso", "_data_": "..."}``."""
    stamp = state.get("timestamp")
    if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
        return None
    data = stamp.get("_data_")
    try:
        moment = datetime.fromisoformat(data) if isinstance(data, str) else None
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else None


def payload_time(payload: dict[str, Any] | None, name: str) -> datetime | None:
    try:
        return parse_time((payload or {}).get(name))
    except ValueError:
        return None
