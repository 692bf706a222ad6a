"""Events as departments receive them (API.md §11): CloudEvents 1.0 in structured JSON, whose ``data.check``
is the check exactly as ``GET /v1/checks/{id}?version=v`` shows it to that department (`api.presenters`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from api.presenters import check_document
from api.principal import Principal
from delivery.feed import Entry
from domain.platform import Platform
from domain.timefmt import format_time

MEDIA_TYPE = "application/cloudevents+json"


def cloud_event(platform: Platform, principal: Principal, entry: Entry, now: datetime) -> dict[str, Any]:
    current = platform.check(UUID(entry.check_id))
    check = platform.check(current.id, entry.version) if entry.version != current.version else current
    event = platform.check_events(current.id)[entry.version - 1]
    return {
        "specversion": "1.0",
        "id": str(entry.position),
        "source": f"/v1/checks/{entry.check_id}",
        "type": f"nocert.check.{entry.type}",
        "subject": entry.check_id,
        "time": format_time(event.timestamp),
        "sequence": f"{entry.position:020d}",
        "datacontenttype": "application/json",
        "data": {
            "position": entry.position,
            "version": entry.version,
            "type": entry.type,
            "officer": getattr(event, "officer", None),
            "check": check_document(check, principal, now, current),
        },
    }


def department_principal(platform: Platform, department_id: str) -> Principal:
    """The department as the reader of its deliveries."""
    department = platform.department(department_id)
    return Principal(department.department_id, frozenset(department.roles), department)
