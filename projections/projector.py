"""The projector: applies the next batch of the event log to every view in one transaction.

Each view skips what its own tracking position already reflects, and every view's new position is
written with its rows, so a batch either happens entirely or not at all: a projector killed in the
middle of one leaves the views exactly at the previous batch, and the next run redoes it.

Checks and categories are kept with the domain's own aggregates: each event is decoded with the
application's mapper and applied with the aggregate's own ``mutate``. Aggregates stay in an LRU between
batches; one whose version is not the event's predecessor (evicted, advanced by a batch that rolled back,
or left behind while another process led) is loaded again from the event store at that version.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from domain.category import Category
from domain.check import Check
from domain.department import Department, region_at
from domain.ports import PersonalData
from projections import checks, coverage, ledger, medians
from projections.schema import COUNTERS, VIEWS
from signing import merkle
from signing.key import SigningKey
from store.eventlog import EventLog

BATCH_SIZE = 500
ANSWERED = COUNTERS.index("answered")


class ConcurrentProjection(Exception):
    """Another writer advanced a view during this batch; the batch is rolled back."""


class AggregateCache:
    """The most recently projected aggregates, by id."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        item = self._items.get(aggregate_id)
        if item is not None:
            self._items.move_to_end(aggregate_id)
        return item

    def put(self, aggregate: Aggregate) -> None:
        self._items[aggregate.id] = aggregate
        self._items.move_to_end(aggregate.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def discard(self, aggregate_id: UUID) -> None:
        self._items.pop(aggregate_id, None)


@dataclass
class _Batch:
    """What one batch writes, gathered before writing."""

    tracked: dict[str, int]
    ledger: ledger.LedgerBatch | None
    last: int = 0  # the position of its last notification
    size: int = 0  # how many notifications it read
    departments: dict[str, str] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    checks: dict[UUID, tuple[Check, int]] = field(default_factory=dict)
    coverage: dict[tuple[str, str], coverage.Contribution] = field(default_factory=dict)
    answers: list[medians.Answer] = field(default_factory=list)

    def wants(self, view: str, notification: Notification) -> bool:
        return notification.id > self.tracked[view]


class Projector:
    """Applies batches of notifications to the views. One projector is used by one thread at a time,
    under the views' leader lock."""

    def __init__(
        self,
        app: Application[UUID],
        log: EventLog,
        *,
        signer: SigningKey,
        checkpoint_every: int,
        clock: Callable[[], datetime],
        personal: PersonalData,
        cache_size: int = 10_000,
    ) -> None:
        self.app = app
        self.personal = personal
        self.log = log
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        self.aggregates = AggregateCache(cache_size)
        # department id → (first region, moves): a check counts under its approver's region at raising
        self._regions: dict[str, tuple[str, list[tuple[datetime, str]]]] = {}

    # -- one batch ----------------------------------------------------------------------------

    def apply_next(self, cursor: Any, limit: int = BATCH_SIZE) -> int:
        """Applies the next notifications after the views' positions, in `cursor`'s transaction.

        Returns how many notifications the batch read (0 when every view is caught up)."""
        # Claim the tracking rows first: a second writer (should the leader lock ever fail) waits here
        # for this transaction, then reads the positions it committed (SQLite's write lock does the same).
        cursor.execute("UPDATE view_tracking SET position = position")
        batch = self.prepare(cursor, limit)
        if batch is None:
            return 0
        self.write(cursor, batch)
        return batch.size

    def prepare(self, cursor: Any, limit: int = BATCH_SIZE) -> _Batch | None:
        """Works out what the next notifications after the views' positions (read with `cursor`) change,
        without writing; None when every view is caught up. `write` writes it, in the same transaction or
        a later one (a rebuild prepares outside its write transactions, to keep them short): it fails if
        a view moved in between."""
        tracked, state = _positions_and_ledger(cursor)
        notifications = self.log.read(min(tracked.values()), limit)
        if not notifications:
            return None
        batch = _Batch(tracked, None, last=notifications[-1].id, size=len(notifications))
        if any(batch.wants("ledger", n) for n in notifications):
            batch.ledger = (
                ledger.LedgerBatch(*state, self.signer, self.checkpoint_every, self.clock)
                if state is not None
                else ledger.LedgerBatch.start(cursor, self.signer, self.checkpoint_every, self.clock)
            )
        with self._forgotten_on_failure(batch):
            for notification in notifications:
                self._apply(cursor, batch, notification)
        return batch

    def write(self, cursor: Any, batch: _Batch) -> None:
        """Writes a prepared batch and the views' new positions, in `cursor`'s transaction."""
        with self._forgotten_on_failure(batch):
            self._write(cursor, batch, batch.last)

    @contextmanager
    def _forgotten_on_failure(self, batch: _Batch) -> Iterator[None]:
        try:
            yield
        except BaseException:
            # The batch is not stored: forget aggregates it advanced past what is.
            for check, _ in batch.checks.values():
                self.aggregates.discard(check.id)
            for category in batch.categories.values():
                self.aggregates.discard(category.id)
            raise

    def _apply(self, cursor: Any, batch: _Batch, notification: Notification) -> None:
        # Every event of the platform is an aggregate's (the mapper's protocol type says less).
        event = cast(Aggregate.Event, self.app.mapper.to_domain_event(notification))
        if batch.ledger is not None and batch.wants("ledger", notification):
            batch.ledger.append(notification, event.timestamp)
        if isinstance(event, Check.Event):
            self._apply_check(cursor, batch, notification, event)
        elif isinstance(event, Category.Event):
            category = self._advance(event)
            if batch.wants("directory", notification):
                batch.categories[category.code] = category
        elif isinstance(event, Department.Registered):
            self._regions[event.department_id] = (event.region, [])
            if batch.wants("directory", notification):
                batch.departments[event.department_id] = event.region
        elif isinstance(event, Department.Moved):
            department_id = self._department_id(event)
            history = self._history(department_id)
            if (event.timestamp, event.region) not in history[1]:  # a history loaded later may hold it already
                history[1].append((event.timestamp, event.region))
                history[1].sort()
            if batch.wants("directory", notification):
                batch.departments[department_id] = event.region

    def _apply_check(self, cursor: Any, batch: _Batch, notification: Notification, event: Check.Event) -> None:
        before = self._predecessor(event)
        counted = batch.wants("coverage", notification)
        if counted:
            # what the check counted in before the event (computed before the aggregate mutates)
            before_contribution = coverage.contribution(checks.answer_facts(before) if before is not None else None)
        check = self._advance(event, before)
        if batch.wants("checks", notification):
            batch.checks[check.id] = (check, notification.id)
        if counted:
            region = self._region(check)
            facts = checks.answer_facts(check)
            after = coverage.contribution(facts)
            key = (check.category, region)
            delta = coverage.difference(after, before_contribution)
            batch.coverage[key] = coverage.add(batch.coverage.get(key, coverage.ZERO), delta)
            if delta[ANSWERED] == 1:  # this event is the check's answer
                batch.answers.append((check.category, region, facts["answer_seconds"], notification.id))

    def _predecessor(self, event: Aggregate.Event) -> Any:
        """The aggregate just before `event` (None for a creation event)."""
        if event.originator_version == 1:
            return None
        wanted = event.originator_version - 1
        aggregate = self.aggregates.get(event.originator_id)
        if aggregate is not None and aggregate.version < wanted:
            # The followers of a deployment take turns: another one projected the events between, and only
            # those are read and decoded (each a recorded fact: the result is the stream at `wanted`).
            for missed in self.app.events.get(event.originator_id, gt=aggregate.version, lte=wanted):
                aggregate = cast(Aggregate.Event, missed).mutate(aggregate)
        if aggregate is None or aggregate.version != wanted:
            aggregate = self.app.repository.get(event.originator_id, version=wanted)
        return aggregate

    def _advance(self, event: Aggregate.Event, before: Any = ...) -> Any:
        aggregate = self._predecessor(event) if before is ... else before
        aggregate = event.mutate(aggregate)
        if aggregate is None:  # no nocert event discards its aggregate
            raise RuntimeError(f"event {type(event).__name__} left no aggregate")
        self.aggregates.put(aggregate)
        return aggregate

    def _department_id(self, event: Aggregate.Event) -> str:
        department = self._advance(event)
        department_id: str = department.department_id
        return department_id

    def _history(self, department_id: str) -> tuple[str, list[tuple[datetime, str]]]:
        """The department's first region and moves ('' and none if it was never registered)."""
        history = self._regions.get(department_id)
        if history is None:
            try:
                department: Department = self.app.repository.get(Department.stream_id(department_id))
            except AggregateNotFoundError:
                return ("", [])
            history = self._regions[department_id] = (department.first_region, list(department.moves))
        return history

    def _region(self, check: Check) -> str:
        """The approver's region when the check was raised (a move applies to checks raised afterwards)."""
        first, moves = self._history(check.approver)
        return region_at(first, moves, check.created_on)

    # -- writing ------------------------------------------------------------------------------

    def _write(self, cursor: Any, batch: _Batch, position: int) -> None:
        if batch.departments:
            cursor.executemany(
                "INSERT INTO view_departments (id, region) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET region = excluded.region",
                sorted(batch.departments.items()),
            )
        if batch.categories:
            cursor.executemany(
                "INSERT INTO view_categories (code, name, status, modes) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (code) DO UPDATE SET name = excluded.name, status = excluded.status, "
                "modes = excluded.modes",
                [
                    (code, category.name, category.status, json.dumps(list(category.modes)))
                    for code, category in sorted(batch.categories.items())
                ],
            )
        if batch.checks:
            cursor.executemany(
                checks.UPSERT,
                [
                    checks.row_values(checks.check_row(check, self._region(check), last, self.personal))
                    for check, last in sorted(batch.checks.values(), key=lambda item: item[1])
                ],
            )
        if batch.coverage:
            cursor.executemany(
                coverage.UPSERT, [(category, region, *delta) for (category, region), delta in sorted(batch.coverage.items())]
            )
        if batch.answers:
            medians.add(cursor, batch.answers)
        if batch.ledger is not None:
            batch.ledger.write(cursor)
        behind: dict[int, list[str]] = {}  # the views at each position (all at one, but after a rebuild or a failure)
        for view, tracked in batch.tracked.items():
            if tracked < position:
                behind.setdefault(tracked, []).append(view)
        for tracked, views in sorted(behind.items()):
            # Guarded by the position read at the start: a second writer (should the leader lock ever
            # fail) finds it moved, and its whole batch rolls back instead of counting twice.
            cursor.execute(
                "UPDATE view_tracking SET position = ? WHERE position = ? "
                f"AND view_name IN ({', '.join('?' for _ in views)})",
                (position, tracked, *views),
            )
            if cursor.rowcount != len(views):
                raise ConcurrentProjection(f"views {views!r} moved past {tracked} under this batch")


# Each view's position, and the ledger's state and last checkpoint (`ledger.LedgerBatch.start`), in one statement.
_POSITIONS_AND_LEDGER = (
    "SELECT t.view_name, t.position, s.size, s.frontier, c.size FROM view_tracking t "
    f"LEFT JOIN ({ledger.STATE}) s ON 1 = 1 LEFT JOIN ({ledger.LAST_CHECKPOINT}) c ON 1 = 1"
)


def _positions_and_ledger(cursor: Any) -> tuple[dict[str, int], tuple[merkle.Frontier, int] | None]:
    """`positions`, and the ledger's frontier and last checkpoint size (None when view_tracking has no rows)."""
    rows = cursor.execute(_POSITIONS_AND_LEDGER).fetchall()
    state = (ledger.frontier_of(rows[0][2], rows[0][3]), ledger.size_of(rows[0][4])) if rows else None
    return tracked((row[0], row[1]) for row in rows), state


def positions(cursor: Any) -> dict[str, int]:
    return tracked(cursor.execute("SELECT view_name, position FROM view_tracking").fetchall())


def tracked(rows: Any) -> dict[str, int]:
    """Each view's position from ``(view_name, position)`` rows of view_tracking (0 for a view with none)."""
    found = {name: position for name, position in rows if name is not None}
    return {view: int(found.get(view, 0)) for view in VIEWS}
