"""Officers' accounts on both stores: enrolment codes shown once, passwords set once with the code,
checked with argon2id, renewed when weak, and the optional second factor used once per code."""

from __future__ import annotations

import argon2
import pyotp
import pytest

from api.workbench.accounts import AccountExists, Accounts, EnrolmentRefused, PasswordRejected, TotpRejected
from api.workbench.credentials import PasswordProblem, Passwords, enrolment_code_hash, new_totp_secret
from api.workbench.sessions import Officer
from store.database import Database
from tests.workbench.conftest import Clock

WANG = Officer("fz-gulou-police", "wang.li")
PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(database: Database, cheap_passwords: Passwords, clock: Clock) -> Accounts:
    return Accounts(database, cheap_passwords, clock=clock)


def _row(database: Database, officer: Officer = WANG) -> tuple[object, ...] | None:
    with database.transaction() as cursor:
        return cursor.execute(
            "SELECT enrolment_hash, password_hash, totp_secret, totp_last_step FROM ui_accounts"
            " WHERE department = ? AND login = ?",
            (officer.department, officer.login),
        ).fetchone()


def test_a_new_account_keeps_only_the_hash_of_its_enrolment_code(accounts: Accounts, database: Database) -> None:
    code = accounts.create(WANG)
    row = _row(database)
    assert row == (enrolment_code_hash(code), None, None, None)
    with database.transaction() as cursor:
        assert code not in repr(cursor.execute("SELECT * FROM ui_accounts").fetchall())


def test_a_login_is_unique_within_its_department_only(accounts: Accounts) -> None:
    accounts.create(WANG)
    with pytest.raises(AccountExists):
        accounts.create(WANG)
    accounts.create(Officer("fz-police", WANG.login))


def test_enrolment_sets_the_password_once_with_the_right_code(accounts: Accounts, database: Database) -> None:
    code = accounts.create(WANG)
    with pytest.raises(EnrolmentRefused):
        accounts.enrol(WANG, "AAAA-BBBB-CCCC-DDDD", PASSWORD)
    with pytest.raises(EnrolmentRefused):
        accounts.enrol(Officer(WANG.department, "nobody"), code, PASSWORD)
    assert not accounts.check(WANG, PASSWORD)  # no password before enrolment
    accounts.enrol(WANG, code.lower(), PASSWORD)
    enrolment_hash, password_hash, _, _ = _row(database)  # type: ignore[misc]
    assert enrolment_hash is None and str(password_hash).startswith("$argon2id$")
    assert accounts.check(WANG, PASSWORD)
    with pytest.raises(EnrolmentRefused):  # the code worked once
        accounts.enrol(WANG, code, "another long password")
    assert accounts.check(WANG, PASSWORD)


def test_enrolment_refuses_a_password_against_the_rules_and_keeps_the_code(accounts: Accounts) -> None:
    code = accounts.create(WANG)
    with pytest.raises(PasswordRejected) as short:
        accounts.enrol(WANG, code, "short")
    assert short.value.problems == [PasswordProblem.TOO_SHORT]
    with pytest.raises(PasswordRejected) as with_login:
        accounts.enrol(WANG, code, "i-am-wang.li-at-work")
    assert with_login.value.problems == [PasswordProblem.CONTAINS_LOGIN]
    accounts.enrol(WANG, code, PASSWORD)  # the code still works


def test_check_refuses_wrong_passwords_and_unknown_logins(accounts: Accounts) -> None:
    accounts.enrol(WANG, accounts.create(WANG), PASSWORD)
    assert accounts.check(WANG, PASSWORD)
    assert not accounts.check(WANG, PASSWORD.upper())
    assert not accounts.check(WANG, "")
    assert not accounts.check(Officer(WANG.department, "nobody"), PASSWORD)
    assert not accounts.check(Officer("fz-police", WANG.login), PASSWORD)


def test_a_weak_hash_is_renewed_at_the_next_sign_in(database: Database, clock: Clock) -> None:
    cheap = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
    weak = Accounts(database, Passwords(cheap), clock=clock)
    weak.enrol(WANG, weak.create(WANG), PASSWORD)
    stronger = Passwords(argon2.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1))
    before = _row(database)[1]  # type: ignore[index]
    assert stronger.needs_rehash(str(before))
    assert Accounts(database, stronger, clock=clock).check(WANG, PASSWORD)
    after = str(_row(database)[1])  # type: ignore[index]
    assert after != before and not stronger.needs_rehash(after)
    assert Accounts(database, stronger, clock=clock).check(WANG, PASSWORD)


def test_with_a_second_factor_the_code_is_needed_and_works_once(accounts: Accounts, clock: Clock) -> None:
    accounts.enrol(WANG, accounts.create(WANG), PASSWORD)
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    with pytest.raises(TotpRejected):
        accounts.enable_totp(WANG, secret, "000000" if totp.at(clock.now) != "000000" else "111111")
    accounts.enable_totp(WANG, secret, totp.at(clock.now))
    assert not accounts.check(WANG, PASSWORD)  # no code
    assert not accounts.check(WANG, PASSWORD, totp.at(clock.now))  # the code that turned it on: used
    clock.advance(30)
    code = totp.at(clock.now)
    assert not accounts.check(WANG, "wrong password here", code)
    assert accounts.check(WANG, PASSWORD, code)
    assert not accounts.check(WANG, PASSWORD, code)  # replayed
    clock.advance(30)
    assert not accounts.check(WANG, PASSWORD, totp.at(clock.now - 60))  # older than the last one used
    assert accounts.check(WANG, PASSWORD, totp.at(clock.now))


def test_turning_the_second_factor_on_needs_an_account(accounts: Accounts, clock: Clock) -> None:
    secret = new_totp_secret()
    with pytest.raises(EnrolmentRefused):
        accounts.enable_totp(WANG, secret, pyotp.TOTP(secret).at(clock.now))


def test_a_removed_account_cannot_sign_in_and_its_login_can_be_used_again(accounts: Accounts, database: Database) -> None:
    accounts.enrol(WANG, accounts.create(WANG), PASSWORD)
    accounts.remove(WANG)
    assert _row(database) is None
    assert not accounts.check(WANG, PASSWORD)
    accounts.create(WANG)


def test_a_totp_secret_is_kept_encrypted_and_bound_to_its_officer(database: Database, cheap_passwords: Passwords, clock: Clock) -> None:
    key = b"k" * 32
    accounts = Accounts(database, cheap_passwords, clock=clock, totp_key=key)
    accounts.enrol(WANG, accounts.create(WANG), PASSWORD)
    secret = new_totp_secret()
    accounts.enable_totp(WANG, secret, pyotp.TOTP(secret).at(clock.now))
    with database.transaction() as cursor:
        assert secret not in repr(cursor.execute("SELECT * FROM ui_accounts").fetchall())
    clock.advance(30)
    assert Accounts(database, cheap_passwords, clock=clock, totp_key=key).check(WANG, PASSWORD, pyotp.TOTP(secret).at(clock.now))
    clock.advance(30)
    other_key = Accounts(database, cheap_passwords, clock=clock, totp_key=b"o" * 32)
    assert not other_key.check(WANG, PASSWORD, pyotp.TOTP(secret).at(clock.now))  # refused, never an error
