"""Who is told of each event of a check (API.md §11), written in the command's own transaction: the
approver, the issuer addressed after the event and, for ``Forwarded``, also the former issuer. Each of them
gets a feed entry, and each of their live subscriptions that takes the event's type an outbox row, so that
an event is delivered exactly when it was recorded (`Platform.save_hooks`, `domain.ports.Attachment`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate

from delivery.outbox import subscription_rows
from domain.check import Check
from domain.ports import Attachment
from domain.subscription import Subscription

OUTBOX = (
    "INSERT INTO webhook_deliveries (subscription_id, position, department, check_id, version, status, attempts)"
    " SELECT id, ?, department, ?, ?, 'pending', 0 FROM webhook_subscriptions"
    " WHERE department = ? AND deleted = 0 AND (types IS NULL OR types LIKE ?)"
)
FEED = "INSERT INTO feed_entries (department, position, check_id, version, type) VALUES (?, ?, ?, ?, ?)"


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

    def write(self, cursor: Any, positions: Sequence[int]) -> None:
        for item in self.told:
            position = positions[item.index]
            for department in item.departments:
                cursor.execute(FEED, (department, position, item.check_id, item.version, item.type))
                cursor.execute(OUTBOX, (position, item.check_id, item.version, department, f"%,{item.type},%"))


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
