"""Events as departments receive them (API.md §11): CloudEvents 1.0 in structured JSON, whose ``data.check``
is the check exactly as ``GET /v1/checks/{id}?version=v`` shows it to that department (`api.presenters`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from api.access import sees_full_numbers, sees_proof_jws
from api.presenters import check_document
from api.principal import Principal
from delivery.outbox import Due
from domain.check import Check
from domain.platform import Platform
from domain.timefmt import format_time

MEDIA_TYPE = "application/cloudevents+json"
T = TypeVar("T")


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


class Once:
    """Values made at most once each, by the first thread that asks (the others wait for it and get the
    same value, or the same error)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[Hashable, Future[Any]] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            future = self._made.get(key)
            mine = future is None
            if future is None:
                future = self._made[key] = Future()
        if mine:
            try:
                future.set_result(make())
            except BaseException as error:
                future.set_exception(error)
                raise
        made: T = future.result()
        return made


class Renderings:
    """CloudEvents of one moment (a feed page, a dispatcher round): each check's events are read once and
    replayed once (the check now), each version of it replayed once, each department looked up once, and
    each event's document made and encoded once per *view* of it: the readers for whom `check_document`
    decides alike (whether they see personal data and the proof's JWS, by the check now) share it, e.g. the
    approver and the issuer of a check, while a former issuer of a forwarded check gets its masked one.
    Threads may share it (the dispatcher's workers, whose lanes of different subscriptions send the same
    checks at the same time): each of these is made by the first that needs it (`Once`)."""

    def __init__(self, platform: Platform, read: Callable[[str], list[Any] | None] | None = None) -> None:
        self.platform = platform
        self.now = platform.clock()
        self._once = Once()
        self._read = read  # a check's events as read beforehand (a dispatcher round's, `delivery.streams`)

    def events(self, check_id: str) -> list[Any]:
        return self._once.get(("events", check_id), lambda: self._events(check_id))

    def _events(self, check_id: str) -> list[Any]:
        found = self._read(check_id) if self._read is not None else None
        return found if found is not None else self.platform.check_events(UUID(check_id))

    def _now_and_then(self, check_id: str, version: int) -> tuple[list[Any], Check, Check]:
        """The check's events, the check now and the check at `version`."""
        events = self.events(check_id)
        current: Check = self._once.get(("now", check_id), lambda: replayed(events))
        if version == len(events):
            return events, current, current
        then: Check = self._once.get(("then", check_id, version), lambda: replayed(events[:version]))
        return events, current, then

    def _view(self, principal: Principal, position: int, check_id: str, version: int) -> tuple[tuple[Any, ...], list[Any], Check, Check]:
        events, current, then = self._now_and_then(check_id, version)
        return (position, sees_full_numbers(current, principal), sees_proof_jws(current, principal)), events, current, then

    def event(self, principal: Principal, position: int, check_id: str, version: int) -> dict[str, Any]:
        """The CloudEvent as `principal` sees it (readers of one view share the document: not to be changed)."""
        view, events, current, then = self._view(principal, position, check_id, version)

        def make() -> dict[str, Any]:
            check = check_document(then, principal, self.now, current)
            return envelope(events[version - 1], position, check_id, version, check)

        return self._once.get(("document", *view), make)

    def body(self, due: Due) -> bytes:
        """The body of a webhook: the CloudEvent as the subscription's department sees it now."""
        principal = self._once.get(("principal", due.department), lambda: department_principal(self.platform, due.department))
        view = self._view(principal, due.position, due.check_id, due.version)[0]

        def make() -> bytes:
            event = self.event(principal, due.position, due.check_id, due.version)
            return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()

        return self._once.get(("body", *view), make)


def department_principal(platform: Platform, department_id: str) -> Principal:
    """The department as the reader of its deliveries."""
    department = platform.department(department_id)
    return Principal(department.department_id, frozenset(department.roles), department)
