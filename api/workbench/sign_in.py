"""Signing an officer in: the lock-out first, then the credentials, then a new session in place of the
browser's old one (a new id at sign-in, so that an id planted before it never becomes a signed-in one)."""

from __future__ import annotations

from dataclasses import dataclass

from api.workbench.accounts import Accounts
from api.workbench.lockout import Lockout
from api.workbench.sessions import Officer, Session, Sessions


@dataclass(frozen=True)
class Refused:
    """Wrong credentials (or an unknown login: the same answer); ``locked_until`` when the login is locked."""

    locked_until: float | None = None


class SignIn:
    def __init__(self, accounts: Accounts, lockout: Lockout, sessions: Sessions) -> None:
        self.accounts = accounts
        self.lockout = lockout
        self.sessions = sessions

    def attempt(self, officer: Officer, password: str, totp_code: str, replacing: Session | None) -> Session | Refused:
        """The officer's new session, or why not. A locked login is refused before its password is looked at."""
        until = self.lockout.locked_until(officer)
        if until is not None:
            return Refused(until)
        if not self.accounts.check(officer, password, totp_code):
            return Refused(self.lockout.record_failure(officer))
        self.lockout.clear(officer)
        if replacing is not None:
            self.sessions.end(replacing)
        return self.sessions.start(officer)
