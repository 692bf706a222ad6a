"""Workbench sessions: opaque random ids held by the browser in a cookie, kept server-side in the
table ``ui_sessions`` by the SHA-256 of the id only, so that a copy of the database signs nobody in.

Nobody is stored before signing in: the sign-in and enrolment forms need a CSRF token too, and get it from
an anonymous `Session` that is no row (`Sessions.anonymous`): a random nonce in a cookie of its own, whose
token is an HMAC of the nonce under the table ``ui_form_key``'s random key (a signed double-submit
cookie), so that a visit, a bot's included, writes nothing. Signing in starts a stored session with a new
id (`Sessions.start` also starts stored anonymous ones, for tests of the store). It ends when idle for longer than ``idle`` seconds, when
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
ANONYMOUS_NONCE_LENGTH = len(secrets.token_urlsafe(ID_BYTES))
_CSRF_LABEL = b"nocert workbench csrf"
_ANONYMOUS_LABEL = b"nocert workbench anonymous form:"
FORM_KEY_TABLE = "CREATE TABLE IF NOT EXISTS ui_form_key (name TEXT PRIMARY KEY, secret TEXT NOT NULL)"
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
    #: Set on an anonymous session that is no row (`Sessions.anonymous`): the key its token is signed with.
    form_key: bytes | None = None

    @property
    def stored(self) -> bool:
        return self.form_key is None

    @property
    def csrf_token(self) -> str:
        if self.form_key is not None:
            return hmac.new(self.form_key, _ANONYMOUS_LABEL + self.id.encode(), hashlib.sha256).hexdigest()
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
            cursor.execute(FORM_KEY_TABLE)
            cursor.execute(
                "INSERT INTO ui_form_key (name, secret) VALUES ('anonymous', ?) ON CONFLICT (name) DO NOTHING",
                (secrets.token_hex(32),),
            )
            row = cursor.execute("SELECT secret FROM ui_form_key WHERE name = 'anonymous'").fetchone()
        assert row is not None  # inserted just now, or by whoever inserted it first
        self.form_key = bytes.fromhex(row[0])

    def anonymous(self, nonce: str | None = None) -> Session:
        """A form's anonymous session, stored nowhere: of the browser's nonce (its cookie) when it is one of
        ours in form, else of a new one (to be set in the cookie)."""
        if nonce is None or len(nonce) != ANONYMOUS_NONCE_LENGTH or not nonce.replace("-", "").replace("_", "").isalnum():
            nonce = secrets.token_urlsafe(ID_BYTES)
        return Session(nonce, None, self.clock(), self.form_key)

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
        if not session.stored:
            return
        with self.database.transaction() as cursor:
            cursor.execute("DELETE FROM ui_sessions WHERE id_hash = ?", (_id_hash(session.id),))

    def end_officer(self, officer: Officer) -> int:
        """Ends every session of ``officer`` at once (API.md §12: a deleted officer); returns how many."""
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM ui_sessions WHERE department = ? AND login = ?", (officer.department, officer.login)
            )
            return int(cursor.rowcount)
