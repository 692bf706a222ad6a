"""Events as departments receive them (API.md §11): CloudEvents 1.0 in structured JSON, whose ``data.check``
is the check exactly as ``GET /v1/checks/{id}?version=v`` shows it to that department (`api.presenters`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from api.presenters import check_document
from api.principal import Principal
from delivery.outbox import Due
from domain.platform import Platform
from domain.timefmt import format_time

MEDIA_TYPE = "application/cloudevents+json"


def cloud_event(
    events: Sequence[Any], principal: Principal, position: int, check_id: str, version: int, now: datetime
) -> dict[str, Any]:
    """The event that made version `version` of the check, recorded at `position`, for `principal`; `events`
    are the check's events as read now (`Platform.check_events`), only read here: the version and the check
    now are replayed from them."""
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


class Renderings:
    """CloudEvents of one moment (a feed page, a dispatcher round): each check's events are read once and each
    department looked up once, however many events of them are rendered. Threads may share it (the dispatcher's
    workers): two that race for the same check both read it, and either answer is the check now."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.now = platform.clock()
        self._events: dict[str, list[Any]] = {}
        self._principals: dict[str, Principal] = {}

    def events(self, check_id: str) -> list[Any]:
        found = self._events.get(check_id)
        if found is None:
            found = self._events[check_id] = self.platform.check_events(UUID(check_id))
        return found

    def event(self, principal: Principal, position: int, check_id: str, version: int) -> dict[str, Any]:
        return cloud_event(self.events(check_id), principal, position, check_id, version, self.now)

    def body(self, due: Due) -> bytes:
        """The body of a webhook: the CloudEvent as the subscription's department sees it now."""
        principal = self._principals.get(due.department)
        if principal is None:
            principal = self._principals[due.department] = department_principal(self.platform, due.department)
        event = self.event(principal, due.position, due.check_id, due.version)
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def department_principal(platform: Platform, department_id: str) -> Principal:
    """The department as the reader of its deliveries."""
    department = platform.department(department_id)
    return Principal(department.department_id, frozenset(department.roles), department)
