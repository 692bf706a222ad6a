"""The views' connection to the database that also holds the event store.

One small interface over SQLite (the embedded default) and PostgreSQL, so each view writes its rows
and its tracking position in one transaction on either store. SQL is written with ``?``
placeholders; the PostgreSQL side translates them."""

from __future__ import annotations

import fcntl
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written (503 ``unavailable``)."""


class Cursor(Protocol):
    """A cursor of either store, with ``?`` placeholders (sqlite3's own, and `PostgresCursor`)."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> object: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    @property
    def rowcount(self) -> int: ...


class LeaderLock(Protocol):
    """A lock held by at most one process of a deployment; released when its holder dies."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def close(self) -> None:
        """Releases the lock and whatever holds it open (a connection)."""
        ...


class Database(Protocol):
    """The views' and idempotency records' database: `SQLiteDatabase` or `PostgresDatabase`."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgres``."""
        ...

    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor in one write transaction, committed on success, rolled back on any error."""
        ...

    def reading(self) -> AbstractContextManager[Cursor]:
        """A cursor on one consistent snapshot, for reads only."""
        ...

    def leader_lock(self, name: str) -> LeaderLock: ...

    def close(self) -> None: ...


# -- SQLite -------------------------------------------------------------------------------------


class SQLiteDatabase:
    """Pooled connections to the SQLite file in WAL mode; writes take the write lock up front."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as error:
            raise DatabaseUnavailable(f"SQLite database {self.path}: {error}") from error
        return connection

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._pool.get_nowait()
        except queue.Empty:
            connection = self._connect()
        try:
            yield connection
        finally:
            if connection.in_transaction:
                connection.rollback()
            self._pool.put(connection)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._connection() as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
                cursor = connection.cursor()
                yield cursor
                connection.execute("COMMIT")
            except sqlite3.OperationalError as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise DatabaseUnavailable(f"SQLite database {self.path}: {error}") from error
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Cursor]:
        """A consistent read (one snapshot) without taking the write lock."""
        with self._connection() as connection:
            try:
                connection.execute("BEGIN")
                yield connection.cursor()
            except sqlite3.OperationalError as error:
                raise DatabaseUnavailable(f"SQLite database {self.path}: {error}") from error
            finally:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")

    def leader_lock(self, name: str) -> LeaderLock:
        return FileLeaderLock(self.path.with_name(f"{self.path.name}.{name}.lock"))

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


class FileLeaderLock:
    """``flock`` on a lock file beside the database: the kernel releases it when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self.release()


# -- PostgreSQL ---------------------------------------------------------------------------------

# The row of an ``INSERT ... VALUES`` with placeholders only, e.g. ``(?, ?, ?)``.
_VALUES = re.compile(r"\bVALUES\s*(\((?:\s*\?\s*,)*\s*\?\s*\))", re.IGNORECASE)
ROWS_PER_INSERT = 1000
_READING = " ISOLATION LEVEL REPEATABLE READ READ ONLY"


@lru_cache(maxsize=64)
def _numbered_rows(width: int, count: int) -> str:
    """``($1, $2), ($3, $4)`` for width 2 and count 2."""
    return ", ".join("(" + ", ".join(f"${n * width + i + 1}" for i in range(width)) + ")" for n in range(count))


class PostgresCursor:
    """Translates ``?`` placeholders to psycopg's ``%s``."""

    def __init__(self, cursor: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self._cursor = cursor

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PostgresCursor:
        self._cursor.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """An ``INSERT ... VALUES (?, ...)`` goes as multi-row INSERTs, up to `ROWS_PER_INSERT` rows a
        statement: psycopg's executemany sends every row as a statement of its own, and its per-row
        work was most of a rebuild's time. The rows must not repeat a key that ``ON CONFLICT`` updates
        (PostgreSQL refuses to update one row twice in a statement); every caller's rows are unique."""
        match = _VALUES.search(sql) if sql.lstrip().upper().startswith("INSERT") else None
        if match is None or len(rows) < 2:
            self._cursor.executemany(self._sql(sql), rows)
            return
        import psycopg

        # PostgreSQL's own $n placeholders, through a raw cursor: psycopg would otherwise parse the long
        # statement for its %s placeholders every time (it caches only short statements).
        head, tail = sql[: match.start(1)], sql[match.end(1) :]
        width = match.group(1).count("?")
        with psycopg.RawCursor(self._cursor.connection) as raw:
            for start in range(0, len(rows), ROWS_PER_INSERT):
                part = rows[start : start + ROWS_PER_INSERT]
                raw.execute(f"{head}{_numbered_rows(width, len(part))}{tail}", list(chain.from_iterable(part)))

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class PostgresDatabase:
    """The views' and idempotency records' side of PostgreSQL, on the store's schema.

    In a service it borrows the connection pool of eventsourcing's datastore (``pool``): one pool per
    process, sized by ``NOCERT_DB_POOL_SIZE`` in total and opened on first use, whose connections set
    the schema per transaction. Without ``pool`` (tests, tools) it keeps a small lazy pool of its own.
    Every leader lock of the process shares one more connection (`AdvisoryLocks`)."""

    dialect = "postgres"

    def __init__(self, conninfo: str, schema: str = "", pool_size: int = 10, *, pool: Any = None) -> None:
        import psycopg_pool

        self.conninfo = conninfo
        self.schema = schema
        self._owned = pool is None
        self._pool: psycopg_pool.ConnectionPool[Any] = pool or psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": 5, "autocommit": True},
            timeout=5.0,
            open=False,
            check=psycopg_pool.ConnectionPool.check_connection,
        )
        self._locks = AdvisoryLocks(conninfo)
        on_schema = f'; SET LOCAL search_path TO "{schema}"' if schema else ""
        self._begin, self._begin_reading = (f"BEGIN{mode}{on_schema}".encode() for mode in ("", _READING))

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        import psycopg
        import psycopg_pool

        try:
            yield
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
            raise DatabaseUnavailable(f"PostgreSQL: {error}") from error

    @contextmanager
    def _cursor(self, begin: bytes) -> Iterator[PostgresCursor]:
        import psycopg
        from psycopg.rows import tuple_row

        with self._guarded():
            self._pool.open(wait=False)
            with self._pool.connection() as connection, connection.cursor(row_factory=tuple_row) as cursor:
                cursor.execute(begin)  # BEGIN and the schema in one round trip (autocommit connections)
                try:
                    yield PostgresCursor(cursor)
                except BaseException:
                    with suppress(psycopg.Error):  # a broken connection is the pool's to discard
                        cursor.execute(b"ROLLBACK")
                    raise
                cursor.execute(b"COMMIT")

    def transaction(self) -> AbstractContextManager[PostgresCursor]:
        return self._cursor(self._begin)

    def reading(self) -> AbstractContextManager[PostgresCursor]:
        return self._cursor(self._begin_reading)

    def leader_lock(self, name: str) -> LeaderLock:
        return AdvisoryLeaderLock(self._locks, f"nocert:{self.schema}:{name}")

    def close(self) -> None:
        self._locks.close()
        if self._owned:
            self._pool.close()


class AdvisoryLocks:
    """The one connection on which a process holds all its session-level advisory locks (the view
    follower's, the checkpoint signer's, a rebuild's...): PostgreSQL releases them when it dies, so
    another process takes over. Opened on first use. PostgreSQL's advisory locks are re-entrant within
    a session, so the holders in this process are kept here too: a lock is held by one of them at most."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._connection: Any = None
        self._holders: dict[str, object] = {}
        self._mutex = threading.Lock()

    def try_acquire(self, name: str, holder: object) -> bool:
        import psycopg

        with self._mutex:
            try:
                if self._holders.get(name) is holder:
                    self._connection.execute("SELECT 1")  # still alive, with every lock it holds
                    return True
                if name in self._holders:  # held here by another: unless the session died with it
                    self._connection.execute("SELECT 1")
                    return False
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                row = self._connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
            except psycopg.Error:
                self._drop()  # the session died, and every lock with it
                return False
            if row and row[0]:
                self._holders[name] = holder
                return True
            return False

    def release(self, name: str, holder: object) -> None:
        import psycopg

        with self._mutex:
            if self._holders.get(name) is not holder:
                return
            del self._holders[name]
            try:
                self._connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
            except psycopg.Error:
                self._drop()

    def close(self) -> None:
        with self._mutex:
            self._drop()

    def _drop(self) -> None:
        self._holders.clear()
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
                pass
            finally:
                self._connection = None


class AdvisoryLeaderLock:
    """A session-level advisory lock on the process's lock connection (`AdvisoryLocks`)."""

    def __init__(self, locks: AdvisoryLocks, name: str) -> None:
        self.locks = locks
        self.name = name

    def try_acquire(self) -> bool:
        return self.locks.try_acquire(self.name, self)

    def release(self) -> None:
        self.locks.release(self.name, self)

    def close(self) -> None:
        self.release()


def _store_errors() -> tuple[type[Exception], ...]:
    from eventsourcing.persistence import InterfaceError, OperationalError

    return (DatabaseUnavailable, OperationalError, InterfaceError, sqlite3.OperationalError)


#: Failures that mean "the store is unreachable or not writable" (503 ``unavailable``), never a bug.
STORE_ERRORS = _store_errors()
