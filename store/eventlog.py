"""Reading the one global event log: positions, pages of notifications, a stream's positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from store.database import Database


class _EventsTable(Protocol):
    events_table_name: str


class EventLog:
    """The application's recorder seen as one ordered log of positions (notification ids)."""

    def __init__(self, app: Application[UUID], database: Database | None) -> None:
        self.app = app
        self.recorder = app.recorder
        self.database = database

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def head_query(self) -> str | None:
        """A query for the log's head (one row, column ``head``, NULL when empty) to join with the views' own
        tables in one statement (`projections.follower`); None for the in-memory store, which has no table."""
        if self.database is None:
            return None
        table = cast(_EventsTable, self.recorder).events_table_name
        column = "rowid" if self.database.dialect == "sqlite" else "notification_id"
        return f"SELECT max({column}) AS head FROM {table}"

    def read(self, after: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        """Up to ``limit`` notifications with position > ``after`` (and <= ``stop``), in order."""
        return self.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )

    def read_rows(self, after: int, limit: int, stop: int | None = None) -> list[tuple[Any, ...]]:
        """Like `read`, but the rows as stored, unconverted: ``(position, originator_id, originator_version,
        topic, state)``, whatever their types (a state rewritten as TEXT, an id that is no UUID). For the
        audit, which reports a row that eventsourcing could not read instead of failing on it."""
        if self.database is None:  # in-memory store: its notifications are all there is
            return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in self.read(after, limit, stop)]
        table = cast(_EventsTable, self.recorder).events_table_name
        column = "rowid" if self.database.dialect == "sqlite" else "notification_id"
        bounds, params = f"{column} > ?", [after]
        if stop is not None:
            bounds, params = f"{bounds} AND {column} <= ?", [after, stop]
        sql = (
            f"SELECT {column}, originator_id, originator_version, topic, state FROM {table} "
            f"WHERE {bounds} ORDER BY {column} LIMIT ?"
        )
        with self.database.reading() as cursor:
            return [tuple(row) for row in cursor.execute(sql, (*params, limit)).fetchall()]

    def stream_positions(self, stream_id: UUID) -> dict[int, int]:
        """Version → global position for one stream, read from the event store's own table."""
        # Both stores' recorders (SQLite's and PostgreSQL's) name their table; the in-memory one has none.
        table = cast(_EventsTable, self.recorder).events_table_name
        if self.database is None:  # in-memory store: scan (tests only)
            positions: dict[int, int] = {}
            after = 0
            while page := self.read(after, 1000):
                for notification in page:
                    if notification.originator_id == stream_id:
                        positions[notification.originator_version] = notification.id
                after = page[-1].id
            return positions
        if self.database.dialect == "sqlite":
            sql = f"SELECT originator_version, rowid FROM {table} WHERE originator_id = ?"
            params: tuple[object, ...] = (stream_id.hex,)
        else:
            sql = f"SELECT originator_version, notification_id FROM {table} WHERE originator_id = ?"
            params = (stream_id,)
        with self.database.reading() as cursor:
            return dict(cursor.execute(sql, params).fetchall())
