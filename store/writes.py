"""One save's write, and the rule that decides, under the events table's lock, what becomes of each write
of a batch.

A write is the stored events of one `Application.save` and its attachments (rows written in the same
transaction: the command's replayable outcome, its outbox rows; see `domain.ports.Attachment`). Under the
lock, the rows that already hold a write's (stream, version) keys decide it:

- none: the write is inserted;
- all of them, with the very same topic and state bytes: an earlier attempt of this same write committed
  (its answer was lost with a connection), so it counts as committed with the positions found, and is not
  inserted again — a retry of a batch can never record an event twice nor refuse its own events;
- otherwise: another command took one of its versions first, and the write alone is refused
  (`IntegrityError`, the optimistic-concurrency conflict), never its batch-mates.

Two writes of one batch that claim the same version are told apart the same way: the first wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

Key = tuple[str, int]  # (stream id as text, version)


@dataclass(frozen=True)
class Existing:
    """A stored event already holding a key: its position and what it holds."""

    position: int
    topic: str
    state: bytes


@dataclass
class EventWrite:
    """The events of one save (in order) and what is written with them."""

    events: Sequence[StoredEvent]
    attachments: Sequence[Any] = field(default_factory=tuple)

    def keys(self) -> list[Key]:
        return [key_of(event.originator_id, event.originator_version) for event in self.events]


def key_of(originator_id: UUID | str, version: int) -> Key:
    return (originator_id.hex if isinstance(originator_id, UUID) else str(UUID(str(originator_id)).hex), version)


@dataclass
class Plan:
    """What a batch does: which writes to insert (in order), and the outcome of the others."""

    insert: list[int]
    outcomes: dict[int, list[int] | BaseException]


def plan(writes: Sequence[EventWrite], existing: Mapping[Key, Existing]) -> Plan:
    """Decides each write of a batch from the rows that hold its keys already (see the module)."""
    claimed: set[Key] = set()
    insert: list[int] = []
    outcomes: dict[int, list[int] | BaseException] = {}
    for index, write in enumerate(writes):
        keys = write.keys()
        found = [existing.get(key) for key in keys]
        if found and all(
            row is not None and row.topic == event.topic and bytes(row.state) == bytes(event.state)
            for row, event in zip(found, write.events, strict=True)
        ):
            outcomes[index] = [row.position for row in found if row is not None]
        elif any(row is not None for row in found) or any(key in claimed for key in keys) or len(set(keys)) != len(keys):
            outcomes[index] = IntegrityError(f"version conflict on {sorted({key[0] for key in keys})}")
        else:
            claimed.update(keys)
            insert.append(index)
    return Plan(insert, outcomes)


def all_keys(writes: Iterable[EventWrite]) -> list[Key]:
    return [key for write in writes for key in write.keys()]
