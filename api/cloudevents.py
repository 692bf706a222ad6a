"""Events as departments receive them (API.md §11): CloudEvents 1.0 in structured JSON, whose ``data.check``
is the check exactly as ``GET /v1/checks/{id}?version=v`` shows it to that department (`api.presenters`)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from api.presenters import check_document
from api.principal import Principal
from domain.platform import Platform
from domain.timefmt import format_time

MEDIA_TYPE = "application/cloudevents+json"


def cloud_event(
    platform: Platform, principal: Principal, position: int, check_id: str, version: int, now: datetime
) -> dict[str, Any]:
    """The event that made version `version` of the check, recorded at `position`, for `principal`."""
    events = platform.check_events(UUID(check_id))  # one read: the version and the check now, replayed
    check: Any = None
    for each in events[:version]:
        check = each.mutate(check)
    current = check
    if version < len(events):
        check = copy.deepcopy(check)
        for each in events[version:]:
            current = each.mutate(current)
    event = events[version - 1]
    kind = type(event).__name__
    return {
        "specversion": "1.0",
        "id": str(position),
        "source": f"/v1/checks/{check_id}",
        "type": f"nocert.check.{kind}",
        "subject": check_id,
        "time": format_time(event.timestamp),
        "sequence": f"{position:020d}",
        "datacontenttype": "application/json",
        "data": {
            "position": position,
            "version": version,
            "type": kind,
            "officer": getattr(event, "officer", None),
            "check": check_document(check, principal, now, current),
        },
    }


def department_principal(platform: Platform, department_id: str) -> Principal:
    """The department as the reader of its deliveries."""
    department = platform.department(department_id)
    return Principal(department.department_id, frozenset(department.roles), department)


def render_delivery(platform: Platform, department: str, position: int, check_id: str, version: int) -> bytes:
    """The body of a webhook: the CloudEvent as the subscription's department sees it now."""
    event = cloud_event(platform, department_principal(platform, department), position, check_id, version, platform.clock())
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
