"""The witness's memory (``witness.db`` in its state directory): per log origin, the latest checkpoint it
cosigned, and the signed checkpoints it refused as inconsistent (evidence of a fork or a rollback).

C2SP tlog-witness requires the check of the old size against the latest cosigned checkpoint and the update
to it to be atomic, or two concurrent submissions could roll the record back. `WitnessState.updating` holds
SQLite's write lock (``BEGIN IMMEDIATE``) from the read of the latest checkpoint to the commit of the new
one, across threads and processes alike.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

DB_FILE = "witness.db"
_BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    origin TEXT PRIMARY KEY,
    origin_sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    checkpoint TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    witnessed_size INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Cosigned:
    """The latest checkpoint cosigned for a log: its size, root hash and the note as served to monitors
    (the log's verified signatures and the witness's cosignature)."""

    origin: str
    size: int
    root_hash: bytes
    note: str
    cosigned_at: int


@dataclass(frozen=True)
class Evidence:
    """A checkpoint signed by the log that the witness refused as inconsistent with what it had cosigned."""

    origin: str
    checkpoint: str
    reason: str
    witnessed_size: int
    received_at: int


class Update:
    """One atomic check-and-update of a log's record (see `WitnessState.updating`)."""

    def __init__(self, connection: sqlite3.Connection, origin: str) -> None:
        self._connection = connection
        self.origin = origin
        self.latest = _latest(connection, origin)

    def store(self, size: int, root_hash: bytes, note: str) -> None:
        self._connection.execute(
            "INSERT INTO checkpoints (origin, origin_sha256, size, root_hash, note, cosigned_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
            "root_hash = excluded.root_hash, note = excluded.note, cosigned_at = excluded.cosigned_at",
            (self.origin, origin_sha256(self.origin), size, root_hash, note, int(time.time())),
        )


class WitnessState:
    """The SQLite file ``witness.db`` in `state_dir` (created with its tables on first use)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir = Path(state_dir)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = state_dir / DB_FILE
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    @contextmanager
    def updating(self, origin: str) -> Iterator[Update]:
        """The record of `origin` under the write lock: commit what the block stores, roll back if it raises.

        Concurrent updaters, in this process or another, wait for the lock: each sees the record as the
        previous one left it."""
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield Update(connection, origin)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def latest(self, origin: str) -> Cosigned | None:
        with closing(self._connect()) as connection:
            return _latest(connection, origin)

    def latest_by_origin_hash(self, origin_hash: str) -> Cosigned | None:
        """The record of the origin whose `origin_sha256` is `origin_hash` (the monitoring URL's form)."""
        with closing(self._connect()) as connection:
            return _latest(connection, origin_hash, "origin_sha256")

    def record_evidence(self, origin: str, checkpoint: str, reason: str, witnessed_size: int) -> None:
        """Keep a refused, validly signed checkpoint (once per checkpoint text)."""
        with closing(self._connect()) as connection:
            connection.execute(
                "INSERT INTO evidence (origin, checkpoint, reason, witnessed_size, received_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (checkpoint) DO NOTHING",
                (origin, checkpoint, reason, witnessed_size, int(time.time())),
            )

    def evidence(self, origin: str) -> list[Evidence]:
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT origin, checkpoint, reason, witnessed_size, received_at FROM evidence WHERE origin = ? "
                "ORDER BY id",
                (origin,),
            ).fetchall()
        return [Evidence(*row) for row in rows]

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT above.
        return sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)


def origin_sha256(origin: str) -> str:
    """The lowercase hex SHA-256 of a log origin, as the witness's monitoring URL names the log."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


def _latest(connection: sqlite3.Connection, key: str, column: str = "origin") -> Cosigned | None:
    row = connection.execute(
        f"SELECT origin, size, root_hash, note, cosigned_at FROM checkpoints WHERE {column} = ?", (key,)
    ).fetchone()
    return Cosigned(row[0], row[1], bytes(row[2]), row[3], row[4]) if row else None
