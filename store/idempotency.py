"""Idempotency records kept in the database (API.md §1): correct across workers and restarts.

A key is scoped to the calling principal and the path (`api.gateway` names both; `api.idempotency`
says which keys are valid and fingerprints bodies). The first request inserts an ``in_progress`` row; its
response (below 500) is stored and replayed to repeats with a JSON-equal body. A row left ``in_progress`` by a process that died is taken over after ``stale_after`` seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from store.database import Database

STALE_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """What to do with a request: ``proceed``, ``replay`` (with ``response``), ``mismatch`` or ``in_progress``."""

    action: str
    response: StoredResponse | None = None


class IdempotencyStore:
    def __init__(self, database: Database, stale_after: float = STALE_AFTER_SECONDS) -> None:
        self.database = database
        self.stale_after = stale_after
        body_type = "BYTEA" if database.dialect == "postgres" else "BLOB"
        with database.transaction() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS idempotency_keys ("
                " principal TEXT NOT NULL, path TEXT NOT NULL, idem_key TEXT NOT NULL,"
                " fingerprint TEXT NOT NULL, state TEXT NOT NULL, status INTEGER,"
                f" body {body_type}, headers TEXT, updated_at DOUBLE PRECISION NOT NULL,"
                " PRIMARY KEY (principal, path, idem_key))"
            )

    def begin(self, principal: str, path: str, key: str, fingerprint: str) -> Outcome:
        now = time.time()
        with self.database.transaction() as cursor:
            cursor.execute(
                "INSERT INTO idempotency_keys (principal, path, idem_key, fingerprint, state, updated_at)"
                " VALUES (?, ?, ?, ?, 'in_progress', ?) ON CONFLICT DO NOTHING",
                (principal, path, key, fingerprint, now),
            )
            if cursor.rowcount == 1:
                return Outcome("proceed")
            row = cursor.execute(
                "SELECT fingerprint, state, status, body, headers, updated_at FROM idempotency_keys"
                " WHERE principal = ? AND path = ? AND idem_key = ?",
                (principal, path, key),
            ).fetchone()
            if row is None:  # released between the two statements: try again as new
                return self.begin(principal, path, key, fingerprint)
            stored_fingerprint, state, status, body, headers, updated_at = row
            if stored_fingerprint != fingerprint:
                return Outcome("mismatch")
            if state == "done":
                return Outcome("replay", StoredResponse(status, bytes(body), json.loads(headers)))
            if now - updated_at < self.stale_after:
                return Outcome("in_progress")
            cursor.execute(
                "UPDATE idempotency_keys SET updated_at = ? WHERE principal = ? AND path = ? AND idem_key = ?"
                " AND state = 'in_progress' AND updated_at = ?",
                (now, principal, path, key, updated_at),
            )
            return Outcome("proceed" if cursor.rowcount == 1 else "in_progress")

    def complete(self, principal: str, path: str, key: str, response: StoredResponse) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?, body = ?, headers = ?, updated_at = ?"
                " WHERE principal = ? AND path = ? AND idem_key = ?",
                (response.status, response.body, json.dumps(response.headers), time.time(), principal, path, key),
            )

    def release(self, principal: str, path: str, key: str) -> None:
        """Forgets a request that failed with 5xx, so a retry runs it again."""
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM idempotency_keys WHERE principal = ? AND path = ? AND idem_key = ? AND state = 'in_progress'",
                (principal, path, key),
            )

