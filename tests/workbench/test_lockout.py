"""Lock-out after repeated failed sign-ins, on both stores."""

from __future__ import annotations

import threading

import pytest

from api.workbench.lockout import Lockout
from api.workbench.sessions import Officer
from store.database import Database
from tests.workbench.conftest import Clock

LIMIT, DURATION = 5, 15 * 60.0
WANG = Officer("fz-gulou-police", "wang.li")


@pytest.fixture
def lockout(database: Database, clock: Clock) -> Lockout:
    return Lockout(database, limit=LIMIT, duration=DURATION, clock=clock)


def test_the_fifth_failure_in_a_row_locks_the_login_for_the_duration(lockout: Lockout, clock: Clock) -> None:
    for _ in range(LIMIT - 1):
        assert lockout.record_failure(WANG) is None
        assert lockout.locked_until(WANG) is None
    until = lockout.record_failure(WANG)
    assert until == clock.now + DURATION
    assert lockout.locked_until(WANG) == until
    clock.advance(DURATION - 1)
    assert lockout.locked_until(WANG) == until
    clock.advance(1)
    assert lockout.locked_until(WANG) is None


def test_failures_while_locked_neither_count_nor_extend_the_lock(lockout: Lockout, clock: Clock) -> None:
    for _ in range(LIMIT):
        until = lockout.record_failure(WANG)
    clock.advance(60)
    assert lockout.record_failure(WANG) == until


def test_after_the_lock_a_new_count_starts(lockout: Lockout, clock: Clock) -> None:
    for _ in range(LIMIT):
        lockout.record_failure(WANG)
    clock.advance(DURATION)
    for _ in range(LIMIT - 1):
        assert lockout.record_failure(WANG) is None
    assert lockout.record_failure(WANG) == clock.now + DURATION


def test_failures_further_apart_than_the_duration_never_lock(lockout: Lockout, clock: Clock) -> None:
    for _ in range(3 * LIMIT):
        assert lockout.record_failure(WANG) is None
        clock.advance(DURATION + 1)


def test_only_recent_failures_are_kept(lockout: Lockout, clock: Clock, database: Database) -> None:
    """A flood of made-up logins leaves rows for one duration only."""
    for n in range(20):
        lockout.record_failure(Officer("fz-gulou-police", f"made-up-{n}"))
    for _ in range(LIMIT):
        lockout.record_failure(WANG)
    clock.advance(DURATION)
    lockout.record_failure(Officer("fz-gulou-police", "zhang.wei"))
    with database.transaction() as cursor:
        logins = [row[0] for row in cursor.execute("SELECT login FROM ui_sign_in_failures").fetchall()]
    assert logins == ["zhang.wei"]


def test_a_success_clears_the_count(lockout: Lockout) -> None:
    for _ in range(LIMIT - 1):
        lockout.record_failure(WANG)
    lockout.clear(WANG)
    for _ in range(LIMIT - 1):
        assert lockout.record_failure(WANG) is None


def test_logins_are_counted_apart_by_department_and_login(lockout: Lockout) -> None:
    for _ in range(LIMIT):
        lockout.record_failure(WANG)
    assert lockout.locked_until(Officer("fz-gulou-police", "zhang.wei")) is None
    assert lockout.locked_until(Officer("fz-police", "wang.li")) is None


def test_a_limit_of_one_locks_at_the_first_failure(database: Database, clock: Clock) -> None:
    strict = Lockout(database, limit=1, duration=DURATION, clock=clock)
    assert strict.record_failure(WANG) == clock.now + DURATION
    clock.advance(DURATION)
    assert strict.record_failure(WANG) == clock.now + DURATION


def test_concurrent_failures_are_all_counted(lockout: Lockout, database: Database, clock: Clock) -> None:
    """Several workers failing at once: no failure is lost (one upsert each, no read-then-write)."""
    many = Lockout(database, limit=1000, duration=DURATION, clock=clock)
    barrier = threading.Barrier(4)

    def fail() -> None:
        barrier.wait()
        for _ in range(10):
            many.record_failure(WANG)

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.transaction() as cursor:
        row = cursor.execute("SELECT failures FROM ui_sign_in_failures WHERE login = ?", (WANG.login,)).fetchone()
    assert row == (40,)


def test_a_lock_out_needs_a_positive_limit_and_duration(database: Database) -> None:
    with pytest.raises(ValueError):
        Lockout(database, limit=0, duration=DURATION)
    with pytest.raises(ValueError):
        Lockout(database, limit=LIMIT, duration=0)
