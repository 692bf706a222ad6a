"""Who is told of each event of a check (API.md §11), written in the command's own transaction: the
approver, the issuer addressed after the event and, for ``Forwarded``, also the former issuer. Each of them
gets a feed entry, and each of their live subscriptions that takes the event's type an outbox row, so that
an event is delivered exactly when it was recorded (`Platform.save_hooks`, `domain.ports.Attachment`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eventsourcing.domain import Aggregate

from delivery.outbox import subscription_rows
from domain.check import Check
from domain.ports import Attachment
from domain.subscription import Subscription

# Every outbox row of a save in one statement: each (event, department) told, with the LIKE pattern of its
# type (`delivery.outbox.types_column`), joined to the department's live subscriptions that take it.
OUTBOX = (
    "WITH told (position, check_id, version, department, pattern) AS (VALUES {rows})"
    " INSERT INTO webhook_deliveries (subscription_id, position, department, check_id, version, status, attempts)"
    " SELECT s.id, told.position, s.department, told.check_id, told.version, 'pending', 0"
    " FROM told JOIN webhook_subscriptions s ON s.department = told.department AND s.deleted = 0"
    " AND (s.types IS NULL OR s.types LIKE told.pattern)"
)
FEED = "INSERT INTO feed_entries (department, position, check_id, version, type) VALUES (?, ?, ?, ?, ?)"
ROW = "(?, ?, ?, ?, ?)"


@lru_cache(maxsize=64)
def statements(count: int) -> tuple[str, str]:
    """The feed and outbox statements of `count` (event, department) rows, ``?`` placeholders: one statement
    each per save on either store, not two per row (a statement's cost was most of a save's attachments)."""
    rows = ", ".join([ROW] * count)
    return FEED.replace(ROW, rows), OUTBOX.format(rows=rows)


@dataclass(frozen=True)
class Told:
    """One event (by its index in the save) and the departments told of it."""

    index: int
    check_id: str
    version: int
    type: str
    departments: tuple[str, ...]


def parties(check: Check, events: Sequence[Check.Event]) -> list[tuple[str, ...]]:
    """The departments told of each of `events` (the check's pending events, in order; `check` after them)."""
    forwards = sum(isinstance(event, Check.Forwarded) for event in events)
    formers = iter(check.forwarded_from[len(check.forwarded_from) - forwards :])
    # The issuer addressed after each event, walking forward from the issuer before the first.
    issuer = check.forwarded_from[len(check.forwarded_from) - forwards] if forwards else check.issuer
    told: list[tuple[str, ...]] = []
    for event in events:
        if isinstance(event, Check.Raised):
            issuer = event.issuer
            told.append(_distinct(check.approver, issuer))
        elif isinstance(event, Check.Forwarded):
            former, issuer = next(formers), event.to
            told.append(_distinct(check.approver, issuer, former))
        else:
            told.append(_distinct(check.approver, issuer))
    return told


def _distinct(*departments: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(departments))


@dataclass(frozen=True)
class DeliveryRows:
    """The attachment: feed entries and outbox rows of a save's check events."""

    told: tuple[Told, ...]

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        told = [(item, positions[item.index], department) for item in self.told for department in item.departments]
        if not told:
            return
        feed, outbox = statements(len(told))
        cursor.execute(
            feed,
            [v for item, at, department in told for v in (department, at, item.check_id, item.version, item.type)],
        )
        cursor.execute(
            outbox,
            [v for item, at, department in told for v in (at, item.check_id, item.version, department, f"%,{item.type},%")],
        )


def delivery_hook(aggregates: Sequence[Aggregate], events: Sequence[Any]) -> Iterable[Attachment]:
    """The `domain.ports.SaveHook` of delivery: feed entries and outbox rows of check events, and the rows of
    subscriptions."""
    told: list[Told] = []
    attachments: list[Attachment] = []
    for aggregate in aggregates:
        if isinstance(aggregate, Subscription):
            attachments.append(subscription_rows(aggregate, [e for e in events if e.originator_id == aggregate.id]))
        if not isinstance(aggregate, Check):
            continue
        mine = [(index, event) for index, event in enumerate(events) if event.originator_id == aggregate.id]
        for (index, event), departments in zip(mine, parties(aggregate, [event for _, event in mine]), strict=True):
            told.append(Told(index, str(aggregate.id), event.originator_version, type(event).__name__, departments))
    return [*attachments, DeliveryRows(tuple(told))] if told else attachments
