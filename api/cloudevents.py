"""Events as departments receive them (API.md §11): CloudEvents 1.0 in structured JSON, whose ``data.check``
is the check exactly as ``GET /v1/checks/{id}?version=v`` shows it to that department (`api.presenters`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from api.access import sees_full_numbers, sees_proof_jws
from api.presenters import check_document
from api.principal import Principal
from delivery.outbox import Due
from domain.check import Check
from domain.platform import Platform
from domain.timefmt import format_time

MEDIA_TYPE = "application/cloudevents+json"


def replayed(events: Sequence[Any]) -> Any:
    """The check the events make (each replay its own: no state shared with another's)."""
    check: Any = None
    for each in events:
        check = each.mutate(check)
    return check


def envelope(event: Any, position: int, check_id: str, version: int, check: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvent of `event` (version `version` of the check, recorded at `position`) around the check's
    document `check` as its reader sees it."""
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
            "check": check,
        },
    }


def cloud_event(
    events: Sequence[Any], principal: Principal, position: int, check_id: str, version: int, now: datetime
) -> dict[str, Any]:
    """The event that made version `version` of the check, recorded at `position`, for `principal`; `events`
    are the check's events as read now (`Platform.check_events`), only read here: the version and the check
    now are replayed from them."""
    current = replayed(events)
    check = current if version == len(events) else replayed(events[:version])
    return envelope(events[version - 1], position, check_id, version, check_document(check, principal, now, current))


class Renderings:
    """CloudEvents of one moment (a feed page, a dispatcher round): each check's events are read once and
    replayed once (the check now), each version of it replayed once, each department looked up once, and
    each event's document made and encoded once per *view* of it: the readers for whom `check_document`
    decides alike (whether they see personal data and the proof's JWS, by the check now) share it, e.g. the
    approver and the issuer of a check, while a former issuer of a forwarded check gets its masked one.
    Threads may share it (the dispatcher's workers): two that race for the same check both read it, and
    either answer is the check now."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.now = platform.clock()
        self._events: dict[str, list[Any]] = {}
        self._current: dict[str, Check] = {}
        self._versions: dict[tuple[str, int], Check] = {}
        self._principals: dict[str, Principal] = {}
        self._documents: dict[tuple[int, bool, bool], dict[str, Any]] = {}
        self._bodies: dict[tuple[int, bool, bool], bytes] = {}

    def events(self, check_id: str) -> list[Any]:
        found = self._events.get(check_id)
        if found is None:
            found = self._events[check_id] = self.platform.check_events(UUID(check_id))
        return found

    def _now_and_then(self, check_id: str, version: int) -> tuple[list[Any], Check, Check]:
        """The check's events, the check now and the check at `version`."""
        events = self.events(check_id)
        current = self._current.get(check_id)
        if current is None:
            current = self._current[check_id] = replayed(events)
        if version == len(events):
            return events, current, current
        then = self._versions.get((check_id, version))
        if then is None:
            then = self._versions[(check_id, version)] = replayed(events[:version])
        return events, current, then

    def _view(self, principal: Principal, position: int, check_id: str, version: int) -> tuple[tuple[int, bool, bool], list[Any], Check, Check]:
        events, current, then = self._now_and_then(check_id, version)
        return (position, sees_full_numbers(current, principal), sees_proof_jws(current, principal)), events, current, then

    def event(self, principal: Principal, position: int, check_id: str, version: int) -> dict[str, Any]:
        """The CloudEvent as `principal` sees it (readers of one view share the document: not to be changed)."""
        view, events, current, then = self._view(principal, position, check_id, version)
        document = self._documents.get(view)
        if document is None:
            check = check_document(then, principal, self.now, current)
            document = self._documents[view] = envelope(events[version - 1], position, check_id, version, check)
        return document

    def body(self, due: Due) -> bytes:
        """The body of a webhook: the CloudEvent as the subscription's department sees it now."""
        principal = self._principals.get(due.department)
        if principal is None:
            principal = self._principals[due.department] = department_principal(self.platform, due.department)
        view = self._view(principal, due.position, due.check_id, due.version)[0]
        body = self._bodies.get(view)
        if body is None:
            event = self.event(principal, due.position, due.check_id, due.version)
            body = self._bodies[view] = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        return body


def department_principal(platform: Platform, department_id: str) -> Principal:
    """The department as the reader of its deliveries."""
    department = platform.department(department_id)
    return Principal(department.department_id, frozenset(department.roles), department)
