"""The PostgreSQL event store, failing promptly while the database is unreachable.

eventsourcing 9.5.6 retries every recorder call up to 10 times, 0.2 s apart, and each attempt may wait the
whole pool timeout (``POSTGRES_CONNECT_TIMEOUT``) for a connection: with the database down, a request
hangs for about a minute instead of being answered 503. Worse, requests for one aggregate queue behind
each other on the repository's fast-forward lock, so their waits add up.

Here a call is retried only after a *quick* failure (a connection that died under it, which a new
connection cures) and only within a short budget. A *slow* failure (no connection within the pool
timeout: the database is unreachable) opens a breaker: until a call succeeds again, calls fail at once,
except one probing call at a time, at most every ``PROBE_INTERVAL_SECONDS``. So while the database is
down a request is answered within one pool timeout, most of them at once, and the first probe after the
database returns closes the breaker.

Selected with eventsourcing's ``APPLICATION_RECORDER_TOPIC`` (see ``api.settings.store_env``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import DataError, IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from store.database import PostgresCursor
from store.group_commit import GroupCommit
from store.pipelined import pipelined_transaction
from store.positions import POSITIONS, ResolvingCursor, references
from store.writes import EventWrite, Existing, all_keys, key_of, plan

QUICK_FAILURE_SECONDS = 0.5
RETRY_BUDGET_SECONDS = 1.0
RETRY_WAIT_SECONDS = 0.1
PROBE_INTERVAL_SECONDS = 0.5

Method = TypeVar("Method", bound=Callable[..., Any])


class Breaker:
    """Open after a slow failure; then calls fail at once but for one probe at a time."""

    def __init__(self, probe_interval: float = PROBE_INTERVAL_SECONDS) -> None:
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._open = False
        self._probing = False
        self._last_probe = 0.0

    @property
    def is_open(self) -> bool:
        return self._open

    def admit(self) -> bool:
        """Whether a call may go to the database now (raises when it may not); True for a probe."""
        with self._lock:
            if not self._open:
                return False
            now = time.monotonic()
            if self._probing or now - self._last_probe < self.probe_interval:
                raise OperationalError("the database is unreachable (failing fast until a probe gets through)")
            self._probing = True
            self._last_probe = now
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._open = self._probing = False

    def failed(self, slow: bool, probe: bool) -> None:
        with self._lock:
            if probe:
                self._probing = False
            if probe or slow:  # the next probe waits its interval (a caller queued behind this one fails fast)
                self._last_probe = time.monotonic()
            if slow:
                self._open = True


def bounded(method: Method) -> Method:
    """``method`` without eventsourcing's own retry loop: behind the recorder's breaker, retried only
    after quick failures and within ``RETRY_BUDGET_SECONDS``."""
    inner = getattr(method, "__wrapped__", method)

    @wraps(inner)
    def call(self: BoundedPostgresApplicationRecorder, *args: Any, **kwargs: Any) -> Any:
        quick: list[bool] = []  # whether the last attempt failed quickly (only those are retried)

        def attempt() -> Any:
            quick.clear()
            probe = self.breaker.admit()  # raises at once while the breaker is open
            began = time.monotonic()
            try:
                result = inner(self, *args, **kwargs)
            except (InterfaceError, OperationalError):
                slow = time.monotonic() - began > QUICK_FAILURE_SECONDS
                self.breaker.failed(slow, probe)
                quick.append(not slow)
                raise
            self.breaker.succeeded()
            return result

        started = time.monotonic()
        try:
            return attempt()  # the common case, without building a retry policy
        except (InterfaceError, OperationalError):
            if quick != [True]:
                raise
        time.sleep(RETRY_WAIT_SECONDS)
        retrying = Retrying(
            retry=retry_if_exception(
                lambda error: isinstance(error, InterfaceError | OperationalError) and quick == [True]
            ),
            stop=stop_after_delay(max(0.0, RETRY_BUDGET_SECONDS - (time.monotonic() - started))),
            wait=wait_fixed(RETRY_WAIT_SECONDS),
            reraise=True,
        )
        return retrying(attempt)

    return cast(Method, call)  # `wraps` keeps the wrapped method's signature


def rendered(statement: object) -> bytes:
    """A statement's text, composed once: psycopg composes a `Composable` (quoting each identifier
    through libpq) on every ``execute``, and its parsed-query cache only keys plain strings and bytes.
    Without a connection, identifiers are quoted as PQescapeIdentifier does for UTF-8 names (tested)."""
    if isinstance(statement, bytes):
        return statement
    if isinstance(statement, str):
        return statement.encode()
    if isinstance(statement, Composable):
        return statement.as_bytes(None)
    raise TypeError(f"not a statement: {statement!r}")


class BoundedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The recorder the Platform uses on PostgreSQL: the calls of a request, bounded in time. Its
    statements are composed once (`rendered`), not on every call as eventsourcing's are."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = Breaker()
        self._select_streams = rendered(
            SQL(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state"
                " FROM unnest(%s::uuid[], %s::integer[]) AS after_version(id, version)"
                " JOIN {schema}.{table} e ON e.originator_id = after_version.id"
                " AND e.originator_version > after_version.version"
                " ORDER BY e.originator_id, e.originator_version"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        )
        self._lock_statements = [rendered(statement) for statement in self.lock_table_statements]
        self._notify = rendered(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
        self._select_events: dict[tuple[bool, bool, bool, bool], bytes] = {}

    def _lock_table(self, curs: Any) -> None:  # eventsourcing's statements, composed once
        for statement in self._lock_statements:
            curs.execute(statement, prepare=True)

    def _notify_channel(self, curs: Any) -> None:
        curs.execute(self._notify)

    def _select_events_statement(self, gt: bool, lte: bool, desc: bool, limit: bool) -> bytes:
        """eventsourcing's ``select_events`` statement for this combination of its arguments."""
        shape = (gt, lte, desc, limit)
        statement = self._select_events.get(shape)
        if statement is None:
            composed = self.select_events_statement
            composed += SQL(" AND originator_version > %s") if gt else SQL("")
            composed += SQL(" AND originator_version <= %s") if lte else SQL("")
            composed += SQL(" ORDER BY originator_version") + SQL(" DESC" if desc else " ASC")
            composed += SQL(" LIMIT %s") if limit else SQL("")
            statement = self._select_events[shape] = rendered(composed)
        return statement

    @bounded
    def select_streams(self, after: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
        """The events of several streams after given versions, in one query (`domain.repository.StreamReader`)."""
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._select_streams, ([i for i, _ in after], [v for _, v in after]), prepare=True)
            return [
                StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
                for row in cursor.fetchall()
            ]

    @bounded
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """eventsourcing's ``select_events``, its statement composed once per shape."""
        statement = self._select_events_statement(gt is not None, lte is not None, desc, limit is not None)
        params = [originator_id, *(value for value in (gt, lte, limit) if value is not None)]
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, params, prepare=True)
            return [
                StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
                for row in cursor.fetchall()
            ]

    insert_events = bounded(PostgresApplicationRecorder.insert_events)
    select_notifications = bounded(PostgresApplicationRecorder.select_notifications)
    max_notification_id = bounded(PostgresApplicationRecorder.max_notification_id)


class GroupCommitPostgresRecorder(BoundedPostgresApplicationRecorder):
    """Saves of concurrent requests share one transaction under the table lock (`store.group_commit`), each
    with its attachments; a conflicting save is refused alone (`store.writes.plan`). A batch whose
    transaction failed quickly is retried within the recorder's budget, which `plan` makes safe: a batch
    that committed although its answer was lost is recognised, not recorded twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group: GroupCommit[EventWrite, list[int]] = GroupCommit(self._commit_batch)
        self._select_existing = rendered(
            SQL(
                "SELECT originator_id, originator_version, notification_id, topic, state FROM {schema}.{table}"
                " WHERE (originator_id, originator_version) IN"
                " (SELECT * FROM unnest(%s::uuid[], %s::integer[]))"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        )
        # The common case in one statement: every write of the batch inserted, unless one of its keys is
        # taken already (then nothing is inserted, no position is drawn, the statement fails and the batch
        # is planned); the positions kept for the attachments (`store.positions`).
        self._insert_all_new = rendered(
            SQL(POSITIONS).format(
                insert=SQL(
                    "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
                    " SELECT originator_id, originator_version, topic, state FROM unnest(%s::{schema}.{type}[])"
                    " WHERE NOT EXISTS (SELECT 1 FROM {schema}.{table} WHERE (originator_id, originator_version) IN"
                    " (SELECT * FROM unnest(%s::uuid[], %s::integer[])))"
                    " RETURNING notification_id"
                ).format(
                    schema=Identifier(self.datastore.schema),
                    table=Identifier(self.events_table_name),
                    type=Identifier(self.stored_event_type_name),
                )
            )
        )
        # A transaction's set-up in one statement, not two or three: the schema (attachments name their
        # tables unqualified, as all of nocert's SQL does), eventsourcing's lock timeout (`_lock_table`'s
        # first statement, SET LOCAL: for the LOCK that follows) and, when it inserts, the notification
        # (`_notify_channel`'s, sent on commit wherever in the transaction it is queued).
        schema = rendered(Identifier(self.datastore.schema)).decode()
        setup = SQL("SELECT set_config('search_path', {0}, true), set_config('lock_timeout', {1}, true)").format(
            schema, f"{self.datastore.lock_timeout}s"
        )
        self._setup = rendered(setup)
        self._setup_notifying = rendered(setup + SQL(", pg_notify({0}, '')").format(self.channel_name))
        assert len(self._lock_statements) == 2, "eventsourcing's lock: SET LOCAL lock_timeout, then LOCK TABLE"
        self._lock = self._lock_statements[1]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        return self.group.submit(EventWrite(stored_events, kwargs.get("attachments", ())))

    @bounded
    def _commit_batch(self, writes: Sequence[EventWrite]) -> list[list[int] | BaseException]:
        if len(writes) == 1:  # nothing queued with it (as on SQLite: `store.sqlite_recorder`)
            lone = self._commit_lone(writes[0])
            if lone is not None:
                return [lone]
        else:
            new = self._commit_new(writes)
            if new is not None:
                return new
        return self._commit_planned(writes)

    def _commit_lone(self, write: EventWrite) -> list[int] | None:
        """A batch of one: its positions, or None when it is to be planned (`_commit_new`)."""
        outcomes = self._commit_new([write])
        return None if outcomes is None else cast(list[int], outcomes[0])

    def _commit_new(self, writes: Sequence[EventWrite]) -> list[list[int] | BaseException] | None:
        """The batch in the fewest statements and one round trip: the lock, the conditional insert and the
        attachments, their positions resolved by the server (`store.positions`), without the existence query
        and the planning. None when one of its keys is taken (the insert inserted nothing and drew no
        position: no gap) or a constraint refused it: then nothing of this transaction remains, and
        `_commit_planned` decides each write (an earlier attempt of it committed, or it is refused)."""
        keys = all_keys(writes)
        if len(set(keys)) != len(keys):
            return None
        pg_events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for write in writes
            for e in write.events
        ]
        key_params = ([UUID(hex=k) for k, _ in keys], [v for _, v in keys])
        try:
            with self.datastore.get_connection() as connection, connection.cursor() as inserting:
                with pipelined_transaction(connection):
                    with connection.cursor() as cursor:
                        cursor.execute(self._setup_notifying, prepare=True)
                        cursor.execute(self._lock, prepare=True)
                    inserting.execute(self._insert_all_new, (pg_events, *key_params), prepare=True)
                    with connection.cursor(row_factory=tuple_row) as plain:
                        resolving, offset = ResolvingCursor(plain), 0
                        for write in writes:
                            for attachment in write.attachments:
                                attachment.write(resolving, references(offset, len(write.events)))
                            offset += len(write.events)
                row = inserting.fetchone()  # after the COMMIT: one round trip for the whole transaction
        except (DataError, IntegrityError):  # a taken key; an attachment's own refusal is met again when planned
            return None
        positions: list[int] = list(row["positions"]) if row is not None else []
        if len(positions) != len(pg_events):
            raise OperationalError(f"{len(pg_events)} events inserted, {len(positions)} positions returned")
        outcomes: list[list[int] | BaseException] = []
        offset = 0
        for write in writes:
            outcomes.append(positions[offset : offset + len(write.events)])
            offset += len(write.events)
        return outcomes

    def _commit_planned(self, writes: Sequence[EventWrite]) -> list[list[int] | BaseException]:
        """The batch decided by `store.writes.plan` from the rows already holding its keys (after `_commit_new`
        found one of them taken): two round trips under the lock, for the existence query and the insert."""
        keys = all_keys(writes)
        key_params = ([UUID(hex=k) for k, _ in keys], [v for _, v in keys])
        with self.datastore.get_connection() as connection, pipelined_transaction(connection):
            with connection.cursor() as cursor:
                cursor.execute(self._setup, prepare=True)
                cursor.execute(self._lock, prepare=True)
                cursor.execute(self._select_existing, key_params, prepare=True)
                existing = {
                    key_of(row["originator_id"], row["originator_version"]): Existing(
                        row["notification_id"], row["topic"], bytes(row["state"])
                    )
                    for row in cursor.fetchall()
                }
                decided = plan(writes, existing)
                inserted = [event for index in decided.insert for event in writes[index].events]
                positions = []
                if inserted:
                    self._insert_stored_events(cursor, inserted)  # locks (again: a no-op) and notifies
                    positions = [row["notification_id"] for row in cursor.fetchall()]
                if len(positions) != len(inserted):
                    raise OperationalError(f"{len(inserted)} events inserted, {len(positions)} positions returned")
            with connection.cursor(row_factory=tuple_row) as plain:
                portable = PostgresCursor(plain)
                offset = 0
                for index in decided.insert:
                    count = len(writes[index].events)
                    mine = positions[offset : offset + count]
                    offset += count
                    for attachment in writes[index].attachments:
                        attachment.write(portable, mine)
                    decided.outcomes[index] = mine
        return [decided.outcomes[index] for index in range(len(writes))]
