"""Lock-out after repeated failed sign-ins, counted per officer (department and login) in the table
``ui_sign_in_failures``.

``limit`` failures in a row, none more than ``duration`` seconds after the one before, lock the login for
``duration`` seconds; while locked, a sign-in is refused before its password is even looked at, and failures
are not counted. A successful sign-in clears the count; a count left alone for ``duration``, and a lock
that has run out, are forgotten (their rows deleted), so the table holds only recent failures, however
many made-up logins are tried. Logins that do not exist are counted and locked alike, so that the answers
tell nobody which logins exist.

Each failure is one upsert, so that concurrent failures from several workers are all counted (the row is
locked by the statement on PostgreSQL; SQLite writes one transaction at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from api.workbench.sessions import Officer
from store.database import Database

_TABLE = "ui_sign_in_failures"


class Lockout:
    def __init__(
        self, database: Database, *, limit: int, duration: float, clock: Callable[[], float] = time.time
    ) -> None:
        if limit < 1 or duration <= 0:
            raise ValueError("a lock-out needs a limit of at least 1 failure and a positive duration")
        self.database = database
        self.limit = limit
        self.duration = duration
        self.clock = clock
        with database.transaction() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} ("
                " department TEXT NOT NULL, login TEXT NOT NULL, failures INTEGER NOT NULL,"
                " failed_at DOUBLE PRECISION NOT NULL, locked_until DOUBLE PRECISION,"
                " PRIMARY KEY (department, login))"
            )
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {_TABLE}_failed_at ON {_TABLE} (failed_at)")

    def locked_until(self, officer: Officer) -> float | None:
        """When the lock on ``officer`` ends, or None when it may sign in now."""
        with self.database.transaction() as cursor:
            row = cursor.execute(
                f"SELECT locked_until FROM {_TABLE} WHERE department = ? AND login = ?",
                (officer.department, officer.login),
            ).fetchone()
        until = row[0] if row else None
        return until if until is not None and until > self.clock() else None

    def record_failure(self, officer: Officer) -> float | None:
        """Counts a failed sign-in; returns when the lock it caused (or that was already on) ends."""
        now = self.clock()
        old = f"{_TABLE}.locked_until"  # in an upsert's SET, every column reads the row as it was
        with self.database.transaction() as cursor:
            cursor.execute(
                f"DELETE FROM {_TABLE} WHERE failed_at <= ? AND (locked_until IS NULL OR locked_until <= ?)",
                (now - self.duration, now),
            )
            cursor.execute(
                f"INSERT INTO {_TABLE} (department, login, failures, failed_at, locked_until) VALUES (?, ?, 1, ?, ?)"
                " ON CONFLICT (department, login) DO UPDATE SET"
                f" failures = CASE WHEN {old} IS NULL THEN {_TABLE}.failures + 1 ELSE {_TABLE}.failures END,"
                f" failed_at = CASE WHEN {old} IS NULL THEN excluded.failed_at ELSE {_TABLE}.failed_at END,"
                f" locked_until = CASE WHEN {old} IS NOT NULL THEN {old}"
                f"  WHEN {_TABLE}.failures + 1 >= ? THEN ? ELSE NULL END",
                (
                    officer.department,
                    officer.login,
                    now,
                    now + self.duration if self.limit == 1 else None,
                    self.limit,
                    now + self.duration,
                ),
            )
            row = cursor.execute(
                f"SELECT locked_until FROM {_TABLE} WHERE department = ? AND login = ?",
                (officer.department, officer.login),
            ).fetchone()
        assert row is not None
        return None if row[0] is None else float(row[0])

    def clear(self, officer: Officer) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                f"DELETE FROM {_TABLE} WHERE department = ? AND login = ?", (officer.department, officer.login)
            )
