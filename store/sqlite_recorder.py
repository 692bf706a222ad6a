"""The SQLite event store with the write path of PostgreSQL: group commit, attachments in the events'
transaction, and a conflicting save refused alone (`store.writes`).

SQLite has one writer at a time anyway; what group commit saves here is a transaction (and its fsync) per
command. Each batch takes the write lock up front (``BEGIN IMMEDIATE``), so the existence check and the
inserts see the same database and no other process writes between them.

Selected with eventsourcing's ``APPLICATION_RECORDER_TOPIC`` (see ``api.settings.store_env``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from store.group_commit import GroupCommit
from store.writes import EventWrite, Existing, Key, all_keys, key_of, plan

# Keys per existence query: two variables each, well under SQLite's limit of 32 766 variables.
KEYS_PER_QUERY = 2000


class GroupCommitSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group: GroupCommit[EventWrite, list[int]] = GroupCommit(self._commit_batch)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        return self.group.submit(EventWrite(stored_events, kwargs.get("attachments", ())))

    def _commit_batch(self, writes: Sequence[EventWrite]) -> list[list[int] | BaseException]:
        if len(writes) == 1:  # nothing queued with it: the lone write's short path, planned only if refused
            lone = self._commit_lone(writes[0])
            if lone is not None:
                return [lone]
        return self._commit(writes, checked=True)

    def _commit_lone(self, write: EventWrite) -> list[int] | None:
        """A batch of one without the existence query; None when a taken key (the insert's IntegrityError)
        or a constraint refused it, after rolling it back whole (SQLite's rollback leaves no gap)."""
        try:
            outcome = self._commit([write], checked=False)[0]
        except sqlite3.IntegrityError:  # an attachment's own refusal is met again, and raised, when planned
            return None
        return None if isinstance(outcome, BaseException) else outcome

    def _commit(self, writes: Sequence[EventWrite], *, checked: bool) -> list[list[int] | BaseException]:
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor().sqlite_cursor
            try:
                cursor.execute("BEGIN IMMEDIATE")
                decided = plan(writes, self._existing(cursor, all_keys(writes)) if checked else {})
                for index in decided.insert:
                    positions = []
                    for event in writes[index].events:
                        cursor.execute(
                            self.insert_events_statement,
                            (key_of(event.originator_id, 0)[0], event.originator_version, event.topic, event.state),
                        )
                        positions.append(int(cursor.lastrowid or 0))
                    for attachment in writes[index].attachments:
                        attachment.write(cursor, positions)
                    decided.outcomes[index] = positions
                connection.commit()
            except sqlite3.IntegrityError as error:
                connection.rollback()
                if checked:
                    raise OperationalError(error) from error
                raise
            except sqlite3.Error as error:
                connection.rollback()
                raise OperationalError(error) from error
            except BaseException:
                connection.rollback()
                raise
            finally:
                cursor.close()
        return [decided.outcomes[index] for index in range(len(writes))]

    def select_streams(self, after: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
        """The events of several streams after given versions, in one query (`domain.repository.StreamReader`)."""
        found: list[StoredEvent] = []
        for start in range(0, len(after), KEYS_PER_QUERY):
            part = after[start : start + KEYS_PER_QUERY]
            where = " OR ".join("(originator_id = ? AND originator_version > ?)" for _ in part)
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name}"
                    f" WHERE {where} ORDER BY originator_id, originator_version",
                    [value for stream_id, version in part for value in (stream_id.hex, version)],
                )
                found.extend(
                    StoredEvent(self.convert_originator_id(row[0]), row[1], row[2], row[3]) for row in cursor.fetchall()
                )
        return found

    def _existing(self, cursor: sqlite3.Cursor, keys: list[Key]) -> dict[Key, Existing]:
        found: dict[Key, Existing] = {}
        table = self.events_table_name
        for start in range(0, len(keys), KEYS_PER_QUERY):
            part = keys[start : start + KEYS_PER_QUERY]
            rows = ", ".join("(?, ?)" for _ in part)
            cursor.execute(
                f"SELECT originator_id, originator_version, rowid, topic, state FROM {table}"
                f" WHERE (originator_id, originator_version) IN (VALUES {rows})",
                [value for key in part for value in key],
            )
            for originator_id, version, rowid, topic, state in cursor.fetchall():
                found[(originator_id, version)] = Existing(rowid, topic, bytes(state))
        return found
