"""Officers' sign-in credentials, kept in the table ``ui_accounts`` (never in the event store, whose events
auditors export): the hash of the enrolment code until the officer enrols, then the argon2id hash of the
password, and the TOTP secret when the officer turned the second factor on.

The officer itself (its login, name, department and whether it is active) belongs to the domain (API.md
§12: every change is an event). Whoever records an officer's creation calls `Accounts.create` and shows
the code it returns once; whoever records its deletion calls `Accounts.remove` and ends its sessions.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from functools import cached_property

from api.workbench.credentials import (
    PasswordProblem,
    Passwords,
    enrolment_code_hash,
    enrolment_code_matches,
    new_enrolment_code,
    password_problems,
    totp_step,
)
from api.workbench.sessions import Officer
from store.database import Database


class AccountExists(Exception):
    """The department already has an officer of that login (409 ``conflict`` in API.md §12)."""


class EnrolmentRefused(Exception):
    """No officer of that login awaits enrolment with that code (unknown, enrolled already, or a wrong code)."""


class PasswordRejected(Exception):
    def __init__(self, problems: list[PasswordProblem]) -> None:
        super().__init__(", ".join(problems))
        self.problems = problems


class TotpRejected(Exception):
    """The one-time code does not match the secret being turned on."""


class Accounts:
    def __init__(self, database: Database, passwords: Passwords, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.passwords = passwords
        self.clock = clock
        with database.transaction() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS ui_accounts ("
                " department TEXT NOT NULL, login TEXT NOT NULL, enrolment_hash TEXT, password_hash TEXT,"
                " totp_secret TEXT, totp_last_step BIGINT, created_at DOUBLE PRECISION NOT NULL,"
                " PRIMARY KEY (department, login))"
            )

    @cached_property
    def _decoy(self) -> str:
        """A hash of nobody's password: checked when the login is unknown, so that both take as long."""
        return self.passwords.hash(secrets.token_urlsafe(16))

    def create(self, officer: Officer) -> str:
        """An account awaiting enrolment; returns its enrolment code (to be shown once)."""
        code = new_enrolment_code()
        with self.database.transaction() as cursor:
            cursor.execute(
                "INSERT INTO ui_accounts (department, login, enrolment_hash, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (officer.department, officer.login, enrolment_code_hash(code), self.clock()),
            )
            if cursor.rowcount != 1:
                raise AccountExists(f"{officer.login} exists in {officer.department}")
        return code

    def enrol(self, officer: Officer, code: str, password: str) -> None:
        """Sets the first password of an officer with the code it was given; the code then stops working."""
        problems = password_problems(password, officer.login)
        if problems:
            raise PasswordRejected(problems)
        row = self._row(officer, "enrolment_hash")
        if row is None or row[0] is None or not enrolment_code_matches(code, row[0]):
            raise EnrolmentRefused(f"no enrolment of {officer.login} in {officer.department} with that code")
        password_hash = self.passwords.hash(password)  # slow on purpose: outside any transaction
        with self.database.transaction() as cursor:
            cursor.execute(
                "UPDATE ui_accounts SET enrolment_hash = NULL, password_hash = ?"
                " WHERE department = ? AND login = ? AND enrolment_hash = ?",
                (password_hash, officer.department, officer.login, row[0]),
            )
            if cursor.rowcount != 1:  # enrolled meanwhile by another request with the same code
                raise EnrolmentRefused(f"{officer.login} in {officer.department} has enrolled already")

    def check(self, officer: Officer, password: str, totp_code: str = "") -> bool:
        """Whether ``password`` (and, when the officer has a second factor, ``totp_code``) are right.
        A one-time code is accepted once; a password hash of older parameters is renewed."""
        row = self._row(officer, "password_hash", "totp_secret")
        stored, secret = row if row else (None, None)
        # Hashing takes tens of milliseconds: never inside a transaction, which on SQLite blocks every writer.
        if not self.passwords.verify(stored or self._decoy, password) or stored is None:
            return False
        key = (officer.department, officer.login)
        if secret is not None:
            step = totp_step(secret, totp_code, self.clock())
            if step is None:
                return False
            with self.database.transaction() as cursor:
                cursor.execute(
                    "UPDATE ui_accounts SET totp_last_step = ? WHERE department = ? AND login = ?"
                    " AND (totp_last_step IS NULL OR totp_last_step < ?)",
                    (step, *key, step),
                )
                if cursor.rowcount != 1:  # this code (or a later one) was used already
                    return False
        if self.passwords.needs_rehash(stored):
            renewed = self.passwords.hash(password)
            with self.database.transaction() as cursor:
                cursor.execute(
                    "UPDATE ui_accounts SET password_hash = ? WHERE department = ? AND login = ? AND password_hash = ?",
                    (renewed, *key, stored),
                )
        return True

    def _row(self, officer: Officer, *columns: str) -> tuple[str | None, ...] | None:
        with self.database.transaction() as cursor:
            row: tuple[str | None, ...] | None = cursor.execute(
                f"SELECT {', '.join(columns)} FROM ui_accounts WHERE department = ? AND login = ?",
                (officer.department, officer.login),
            ).fetchone()
        return row

    def enable_totp(self, officer: Officer, secret: str, code: str) -> None:
        """Turns the second factor on with ``secret``, once the officer proved its app has it (``code``)."""
        step = totp_step(secret, code, self.clock())
        if step is None:
            raise TotpRejected("the code does not match")
        with self.database.transaction() as cursor:
            cursor.execute(
                "UPDATE ui_accounts SET totp_secret = ?, totp_last_step = ? WHERE department = ? AND login = ?",
                (secret, step, officer.department, officer.login),
            )
            if cursor.rowcount != 1:
                raise EnrolmentRefused(f"no account {officer.login} in {officer.department}")

    def remove(self, officer: Officer) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM ui_accounts WHERE department = ? AND login = ?", (officer.department, officer.login)
            )
