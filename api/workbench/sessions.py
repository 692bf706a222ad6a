"""Workbench sessions: opaque random ids held by the browser in a cookie, kept server-side in the
table ``ui_sessions`` by the SHA-256 of the id only, so that a copy of the database signs nobody in.

A session starts anonymous (the sign-in and enrolment forms need a CSRF token too) and is replaced by a
new one, with a new id, when an officer signs in. It ends when idle for longer than ``idle`` seconds, when
older than ``absolute`` seconds, when its officer signs out, or when all the officer's sessions are ended
at once (the officer was deleted). Its CSRF token is an HMAC of the id: the same on every form of the
session, never stored, and not derivable from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from store.database import Database

ID_BYTES = 32
_CSRF_LABEL = b"nocert workbench csrf"
SESSIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS ui_sessions ("
    " id_hash TEXT PRIMARY KEY, department TEXT, login TEXT,"
    " created_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL)"
)


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Officer:
    """Who a session is signed in as: a login within a department (API.md §12)."""

    department: str
    login: str


@dataclass(frozen=True)
class Session:
    id: str  # the cookie's value; never stored
    officer: Officer | None
    created_at: float

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.id.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()

    def csrf_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token.encode(), token.encode())


class Sessions:
    def __init__(
        self, database: Database, *, idle: float, absolute: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.database = database
        self.idle = idle
        self.absolute = absolute
        self.clock = clock
        with database.transaction() as cursor:
            cursor.execute(SESSIONS_TABLE)
            cursor.execute("CREATE INDEX IF NOT EXISTS ui_sessions_officer ON ui_sessions (department, login)")
            cursor.execute("CREATE INDEX IF NOT EXISTS ui_sessions_seen ON ui_sessions (seen_at)")

    def start(self, officer: Officer | None = None) -> Session:
        """A new session (anonymous when ``officer`` is None); expired sessions are removed on the way."""
        now = self.clock()
        session = Session(secrets.token_urlsafe(ID_BYTES), officer, now)
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM ui_sessions WHERE seen_at < ? OR created_at < ?", (now - self.idle, now - self.absolute)
            )
            cursor.execute(
                "INSERT INTO ui_sessions (id_hash, department, login, created_at, seen_at) VALUES (?, ?, ?, ?, ?)",
                (
                    _id_hash(session.id),
                    officer.department if officer else None,
                    officer.login if officer else None,
                    now,
                    now,
                ),
            )
        return session

    def resume(self, session_id: str | None) -> Session | None:
        """The live session of that id, now seen again; None when there is none (unknown, ended or
        timed out: a timed-out session is removed)."""
        if not session_id:
            return None
        now = self.clock()
        key = _id_hash(session_id)
        with self.database.transaction() as cursor:
            row = cursor.execute(
                "SELECT department, login, created_at, seen_at FROM ui_sessions WHERE id_hash = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            department, login, created_at, seen_at = row
            if now - seen_at > self.idle or now - created_at > self.absolute:
                cursor.execute("DELETE FROM ui_sessions WHERE id_hash = ?", (key,))
                return None
            cursor.execute("UPDATE ui_sessions SET seen_at = ? WHERE id_hash = ?", (now, key))
        officer = Officer(department, login) if login is not None else None
        return Session(session_id, officer, created_at)

    def end(self, session: Session) -> None:
        with self.database.transaction() as cursor:
            cursor.execute("DELETE FROM ui_sessions WHERE id_hash = ?", (_id_hash(session.id),))

    def end_officer(self, officer: Officer) -> int:
        """Ends every session of ``officer`` at once (API.md §12: a deleted officer); returns how many."""
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM ui_sessions WHERE department = ? AND login = ?", (officer.department, officer.login)
            )
            return int(cursor.rowcount)
