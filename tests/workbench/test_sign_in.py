"""Signing in on both stores: lock-out before credentials, a new session replacing the old one."""

from __future__ import annotations

import pytest

from api.workbench.accounts import Accounts
from api.workbench.credentials import Passwords
from api.workbench.lockout import Lockout
from api.workbench.sessions import Officer, Session, Sessions
from api.workbench.sign_in import Refused, SignIn
from store.database import Database
from tests.workbench.conftest import Clock

WANG = Officer("fz-gulou-police", "wang.li")
PASSWORD = "correct horse battery"


@pytest.fixture
def parts(database: Database, cheap_passwords: Passwords, clock: Clock) -> tuple[SignIn, Sessions, Lockout]:
    accounts = Accounts(database, cheap_passwords, clock=clock)
    accounts.enrol(WANG, accounts.create(WANG), PASSWORD)
    sessions = Sessions(database, idle=1800, absolute=43200, clock=clock)
    lockout = Lockout(database, limit=3, duration=900, clock=clock)
    return SignIn(accounts, lockout, sessions), sessions, lockout


def test_the_right_password_replaces_the_browsers_session(parts: tuple[SignIn, Sessions, Lockout]) -> None:
    sign_in, sessions, _ = parts
    anonymous = sessions.start()
    outcome = sign_in.attempt(WANG, PASSWORD, "", replacing=anonymous)
    assert isinstance(outcome, Session) and outcome.officer == WANG and outcome.id != anonymous.id
    assert sessions.resume(anonymous.id) is None
    assert sessions.resume(outcome.id) is not None


def test_failures_lock_and_a_locked_login_is_refused_even_with_the_right_password(
    parts: tuple[SignIn, Sessions, Lockout], clock: Clock
) -> None:
    sign_in, sessions, _ = parts
    assert sign_in.attempt(WANG, "wrong", "", None) == Refused(None)
    assert sign_in.attempt(WANG, "wrong", "", None) == Refused(None)
    locked = sign_in.attempt(WANG, "wrong", "", None)
    assert locked == Refused(clock.now + 900)
    anonymous = sessions.start()
    assert sign_in.attempt(WANG, PASSWORD, "", anonymous) == locked
    assert sessions.resume(anonymous.id) is not None  # a refusal ends nothing
    clock.advance(900)
    assert isinstance(sign_in.attempt(WANG, PASSWORD, "", anonymous), Session)


def test_a_success_clears_the_failures(parts: tuple[SignIn, Sessions, Lockout]) -> None:
    sign_in, _, _ = parts
    for _ in range(2):
        sign_in.attempt(WANG, "wrong", "", None)
    assert isinstance(sign_in.attempt(WANG, PASSWORD, "", None), Session)
    for _ in range(2):
        assert sign_in.attempt(WANG, "wrong", "", None) == Refused(None)
