"""Idempotency records kept in the database (API.md §1): correct across workers, restarts and crashes.

A key is scoped to the calling principal and the path (`api.gateway` names both; `api.idempotency`
says which keys are valid, fingerprints bodies and renders replays). A record moves through three states:

- ``in_progress``: inserted by the first request, in a transaction of its own, before the command runs;
- ``committed``: written by `CommittedAttachment` *in the transaction of the command's events*, with the
  position of the last event and the stream and version it left, so that a command whose events were
  recorded is known to be recorded whatever happens to the process or the connection afterwards;
- ``done``: the answer (below 500) that was sent, its body encrypted with AES-GCM under the record's
  identity as associated data, so that a repeat gets the same status, body and headers.

A repeat of a ``committed`` record whose answer was never kept (the process died, the database failed
between the commit and the answer) is answered from the recorded outcome, never by running the command
again. A record left ``in_progress`` by a process that died is taken over after ``stale_after`` seconds.
Records are forgotten ``expire_after`` seconds after their last change (``NOCERT_IDEMPOTENCY_HOURS``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.database import Cursor, Database

STALE_AFTER_SECONDS = 60.0
EXPIRE_AFTER_SECONDS = 24 * 3600.0
PURGE_EVERY_SECONDS = 60.0
_NONCE = 12

IN_PROGRESS, COMMITTED, DONE = "in_progress", "committed", "done"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Recorded:
    """What a committed command left: the position of its last event, and the stream and version it saved."""

    position: int
    stream: str | None
    version: int | None


@dataclass(frozen=True)
class Outcome:
    """What to do with a request: ``proceed``; ``replay`` (with ``response``); ``recorded`` (a command
    whose events were recorded but whose answer was not kept: ``recorded`` says what it left);
    ``mismatch``; or ``in_progress``."""

    action: str
    response: StoredResponse | None = None
    recorded: Recorded | None = None


@dataclass(frozen=True)
class RecordId:
    principal: str
    path: str
    key: str

    def associated_data(self) -> bytes:
        return json.dumps([self.principal, self.path, self.key]).encode()


class BodyCipher:
    """AES-GCM for stored answers (they hold identity numbers and names); the key stays in the key directory."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, record: RecordId, body: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, body, record.associated_data())

    def open(self, record: RecordId, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], record.associated_data())


class UnreadableRecord(Exception):
    """A stored answer that does not decrypt (another key, a damaged row)."""


# The record marked ``committed`` in one statement (no read of its row count between two, a round trip on
# PostgreSQL). The record of this request (same fingerprint) keeps its other columns; one that was expired
# and taken by another request meanwhile (another fingerprint), or none at all, is replaced by this commit's
# (the commit decides), with no answer kept.
COMMIT = (
    "INSERT INTO idempotency_keys (principal, path, idem_key, fingerprint, state, position, stream, version,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (principal, path, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint,"
    " state = excluded.state, position = excluded.position, stream = excluded.stream,"
    " version = excluded.version, updated_at = excluded.updated_at, "
    + ", ".join(
        f"{column} = CASE WHEN idempotency_keys.fingerprint = excluded.fingerprint THEN idempotency_keys.{column} END"
        for column in ("status", "body", "headers")
    )
)


class CommittedAttachment:
    """Marks the record ``committed`` in the transaction of the command's events (a `domain.ports.Attachment`)."""

    def __init__(self, record: RecordId, fingerprint: str, stream: str | None, version: int | None) -> None:
        self.record = record
        self.fingerprint = fingerprint
        self.stream = stream
        self.version = version

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        record = self.record
        cursor.execute(
            COMMIT,
            (record.principal, record.path, record.key, self.fingerprint, COMMITTED,
             positions[-1] if positions else None, self.stream, self.version, time.time()),
        )


_COLUMNS = {"position": "BIGINT", "stream": "TEXT", "version": "INTEGER"}


class IdempotencyStore:
    def __init__(
        self,
        database: Database,
        cipher: BodyCipher,
        *,
        stale_after: float = STALE_AFTER_SECONDS,
        expire_after: float = EXPIRE_AFTER_SECONDS,
    ) -> None:
        self.database = database
        self.cipher = cipher
        self.stale_after = stale_after
        self.expire_after = expire_after
        self._purged_at = 0.0
        self._purge_lock = threading.Lock()
        body_type = "BYTEA" if database.dialect == "postgres" else "BLOB"
        with database.transaction() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS idempotency_keys ("
                " principal TEXT NOT NULL, path TEXT NOT NULL, idem_key TEXT NOT NULL,"
                " fingerprint TEXT NOT NULL, state TEXT NOT NULL, status INTEGER,"
                f" body {body_type}, headers TEXT, updated_at DOUBLE PRECISION NOT NULL,"
                " position BIGINT, stream TEXT, version INTEGER,"
                " PRIMARY KEY (principal, path, idem_key))"
            )
            self._add_missing_columns(cursor)

    def _add_missing_columns(self, cursor: Cursor) -> None:
        """Stores made before records could be ``committed`` lack the outcome's columns."""
        if self.database.dialect == "postgres":
            for name, kind in _COLUMNS.items():
                cursor.execute(f"ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS {name} {kind}")
            return
        present = {row[1] for row in cursor.execute("PRAGMA table_info(idempotency_keys)").fetchall()}
        for name, kind in _COLUMNS.items():
            if name not in present:
                cursor.execute(f"ALTER TABLE idempotency_keys ADD COLUMN {name} {kind}")

    def attachment(
        self, record: RecordId, fingerprint: str, stream: str | None, version: int | None
    ) -> CommittedAttachment:
        return CommittedAttachment(record, fingerprint, stream, version)

    def begin(self, record: RecordId, fingerprint: str) -> Outcome:
        now = time.time()
        self._purge_expired(now)
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM idempotency_keys WHERE principal = ? AND path = ? AND idem_key = ? AND updated_at < ?",
                (record.principal, record.path, record.key, now - self.expire_after),
            )
            cursor.execute(
                "INSERT INTO idempotency_keys (principal, path, idem_key, fingerprint, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (record.principal, record.path, record.key, fingerprint, IN_PROGRESS, now),
            )
            if cursor.rowcount == 1:
                return Outcome("proceed")
            row = self._row(cursor, record)
            if row is None:  # released between the two statements: try again as new
                return self.begin(record, fingerprint)
            stored_fingerprint, state, updated_at = row[0], row[1], row[5]
            if stored_fingerprint != fingerprint:
                return Outcome("mismatch")
            if state != IN_PROGRESS:
                return self._settled(record, row)
            if now - updated_at < self.stale_after:
                return Outcome("in_progress")
            cursor.execute(
                "UPDATE idempotency_keys SET updated_at = ? WHERE principal = ? AND path = ? AND idem_key = ?"
                " AND state = ? AND updated_at = ?",
                (now, record.principal, record.path, record.key, IN_PROGRESS, updated_at),
            )
            return Outcome("proceed" if cursor.rowcount == 1 else "in_progress")

    def settled(self, record: RecordId) -> Outcome | None:
        """The record's outcome when its command was recorded or answered (``replay``/``recorded``), else None."""
        with self.database.transaction() as cursor:
            row = self._row(cursor, record)
        if row is None or row[1] == IN_PROGRESS:
            return None
        return self._settled(record, row)

    def complete(self, record: RecordId, response: StoredResponse) -> None:
        sealed = self.cipher.seal(record, response.body)
        with self.database.transaction() as cursor:
            cursor.execute(
                "UPDATE idempotency_keys SET state = ?, status = ?, body = ?, headers = ?, updated_at = ?"
                " WHERE principal = ? AND path = ? AND idem_key = ?",
                (DONE, response.status, sealed, json.dumps(response.headers), time.time(), record.principal,
                 record.path, record.key),
            )

    def release(self, record: RecordId) -> None:
        """Forgets a request whose command recorded nothing (it failed with 5xx), so a retry runs it again.
        A ``committed`` record is never released: its events are in the store."""
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM idempotency_keys WHERE principal = ? AND path = ? AND idem_key = ? AND state = ?",
                (record.principal, record.path, record.key, IN_PROGRESS),
            )

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _row(cursor: Cursor, record: RecordId) -> tuple[Any, ...] | None:
        return cursor.execute(
            "SELECT fingerprint, state, status, body, headers, updated_at, position, stream, version"
            " FROM idempotency_keys WHERE principal = ? AND path = ? AND idem_key = ?",
            (record.principal, record.path, record.key),
        ).fetchone()

    def _settled(self, record: RecordId, row: tuple[Any, ...]) -> Outcome:
        _, state, status, body, headers, _, position, stream, version = row
        if state == DONE:
            try:
                plain = self.cipher.open(record, bytes(body))
            except (InvalidTag, ValueError, TypeError) as error:
                raise UnreadableRecord(f"the stored answer of idempotency key {record.key!r} is unreadable") from error
            return Outcome("replay", StoredResponse(status, plain, json.loads(headers)))
        return Outcome("recorded", recorded=Recorded(int(position or 0), stream, version))

    def _purge_expired(self, now: float) -> None:
        """Deletes expired records, at most once a minute per process (and not on every request)."""
        if now - self._purged_at < PURGE_EVERY_SECONDS or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._purged_at = now
            with self.database.transaction() as cursor:
                cursor.execute("DELETE FROM idempotency_keys WHERE updated_at < ?", (now - self.expire_after,))
        finally:
            self._purge_lock.release()
