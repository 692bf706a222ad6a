"""Officers' sign-in credentials, kept in the table ``ui_accounts`` (never in the event store, whose events
auditors export): the hash of the enrolment code until the officer enrols, then the argon2id hash of the
password, and the TOTP secret (encrypted with a key of the key directory) when the officer turned the
second factor on.

The officer itself (its login, name, department and whether it is active) belongs to the domain (API.md
§12: every change is an event). Whoever records an officer's creation saves the `Accounts.creation`
attachment with its event (one transaction) and shows the code once; an enrolment code stops working
after ``enrolment_seconds``. Whoever records its deletion saves `Accounts.removal` with it, which deletes
the credentials and ends every session of the officer in that same transaction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidTag

from api.workbench.credentials import (
    PasswordProblem,
    Passwords,
    TotpCipher,
    enrolment_code_hash,
    enrolment_code_matches,
    new_enrolment_code,
    password_problems,
    totp_step,
)
from api.workbench.sessions import SESSIONS_TABLE, Officer
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


#: How long an enrolment code works unless told otherwise (``NOCERT_UI_ENROLMENT_HOURS``).
ENROLMENT_SECONDS = 72 * 3600


@dataclass(frozen=True)
class _NewAccount:
    """The attachment writing an officer's account, awaiting enrolment, with the event that adds it."""

    officer: Officer
    code_hash: str
    created_at: float
    expires_at: float

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        cursor.execute(
            "INSERT INTO ui_accounts (department, login, enrolment_hash, enrolment_expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (department, login) DO UPDATE SET"
            " enrolment_hash = excluded.enrolment_hash, enrolment_expires_at = excluded.enrolment_expires_at,"
            " password_hash = NULL, totp_secret = NULL, totp_last_step = NULL, created_at = excluded.created_at",
            (self.officer.department, self.officer.login, self.code_hash, self.expires_at, self.created_at),
        )


@dataclass(frozen=True)
class _RemovedAccount:
    """The attachment deleting an officer's credentials and sessions with the event that removes it."""

    officer: Officer

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        key = (self.officer.department, self.officer.login)
        cursor.execute("DELETE FROM ui_accounts WHERE department = ? AND login = ?", key)
        cursor.execute("DELETE FROM ui_sessions WHERE department = ? AND login = ?", key)


class Accounts:
    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        *,
        clock: Callable[[], float] = time.time,
        enrolment_seconds: float = ENROLMENT_SECONDS,
        totp_key: bytes | None = None,
    ) -> None:
        """``totp_key``: the key directory's key for TOTP secrets (a process-local one when None: tests)."""
        self.totp = TotpCipher(totp_key or secrets.token_bytes(32))
        self.database = database
        self.passwords = passwords
        self.clock = clock
        self.enrolment_seconds = enrolment_seconds
        with database.transaction() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS ui_accounts ("
                " department TEXT NOT NULL, login TEXT NOT NULL, enrolment_hash TEXT,"
                " enrolment_expires_at DOUBLE PRECISION, password_hash TEXT,"
                " totp_secret TEXT, totp_last_step BIGINT, created_at DOUBLE PRECISION NOT NULL,"
                " PRIMARY KEY (department, login))"
            )
            # ui_sessions too: `removal` deletes from it, maybe before `Sessions` was ever built.
            cursor.execute(SESSIONS_TABLE)

    def creation(self, officer: Officer) -> tuple[str, _NewAccount]:
        """The enrolment code of a new officer (to be shown once) and the attachment that keeps its hash,
        to be saved with the officer's ``OfficerAdded`` event."""
        code = new_enrolment_code()
        now = self.clock()
        return code, _NewAccount(officer, enrolment_code_hash(code), now, now + self.enrolment_seconds)

    @staticmethod
    def removal(officer: Officer) -> _RemovedAccount:
        """The attachment that deletes the officer's credentials and ends its sessions, to be saved with
        its ``OfficerRemoved`` event."""
        return _RemovedAccount(officer)

    @cached_property
    def _decoy(self) -> str:
        """A hash of nobody's password: checked when the login is unknown, so that both take as long."""
        return self.passwords.hash(secrets.token_urlsafe(16))

    def create(self, officer: Officer) -> str:
        """An account awaiting enrolment; returns its enrolment code (to be shown once)."""
        code = new_enrolment_code()
        now = self.clock()
        with self.database.transaction() as cursor:
            cursor.execute(
                "INSERT INTO ui_accounts (department, login, enrolment_hash, enrolment_expires_at, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (officer.department, officer.login, enrolment_code_hash(code), now + self.enrolment_seconds, now),
            )
            if cursor.rowcount != 1:
                raise AccountExists(f"{officer.login} exists in {officer.department}")
        return code

    def enrol(self, officer: Officer, code: str, password: str) -> None:
        """Sets the first password of an officer with the code it was given; the code then stops working."""
        problems = password_problems(password, officer.login)
        if problems:
            raise PasswordRejected(problems)
        row = self._row(officer, "enrolment_hash", "enrolment_expires_at")
        if row is None or row[0] is None or not enrolment_code_matches(code, str(row[0])):
            raise EnrolmentRefused(f"no enrolment of {officer.login} in {officer.department} with that code")
        if row[1] is not None and float(row[1]) <= self.clock():
            raise EnrolmentRefused(f"the enrolment code of {officer.login} in {officer.department} has expired")
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
            try:
                secret = self.totp.open(officer.department, officer.login, secret)
            except (ValueError, InvalidTag):  # another key, or a damaged row: no sign-in, never a 500
                return False
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

    def _row(self, officer: Officer, *columns: str) -> tuple[Any, ...] | None:
        with self.database.transaction() as cursor:
            row: tuple[Any, ...] | None = cursor.execute(
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
                (self.totp.seal(officer.department, officer.login, secret), step, officer.department, officer.login),
            )
            if cursor.rowcount != 1:
                raise EnrolmentRefused(f"no account {officer.login} in {officer.department}")

    def remove(self, officer: Officer) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(
                "DELETE FROM ui_accounts WHERE department = ? AND login = ?", (officer.department, officer.login)
            )
