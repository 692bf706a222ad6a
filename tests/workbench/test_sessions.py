"""Workbench sessions on both stores: opaque ids kept as hashes, idle and absolute time-outs, ending one
officer's sessions at once, and the CSRF token of a session."""

from __future__ import annotations

import hashlib

import pytest

from api.workbench.sessions import Officer, Session, Sessions
from store.database import Database
from tests.workbench.conftest import Clock

IDLE, ABSOLUTE = 30 * 60.0, 12 * 3600.0
WANG = Officer("fz-gulou-police", "wang.li")
ZHANG = Officer("fz-gulou-police", "zhang.wei")


@pytest.fixture
def sessions(database: Database, clock: Clock) -> Sessions:
    return Sessions(database, idle=IDLE, absolute=ABSOLUTE, clock=clock)


def _rows(database: Database) -> list[tuple[object, ...]]:
    with database.transaction() as cursor:
        return cursor.execute("SELECT id_hash, department, login FROM ui_sessions ORDER BY id_hash").fetchall()


def test_a_session_id_is_random_and_only_its_hash_is_stored(sessions: Sessions, database: Database) -> None:
    first, second = sessions.start(WANG), sessions.start(WANG)
    assert first.id != second.id and len(first.id) >= 43  # 32 random bytes
    stored = {row[0] for row in _rows(database)}
    assert stored == {hashlib.sha256(s.id.encode()).hexdigest() for s in (first, second)}
    with database.transaction() as cursor:
        dump = repr(cursor.execute("SELECT * FROM ui_sessions").fetchall())
    assert first.id not in dump and second.id not in dump


def test_resume_finds_the_session_of_its_id_only(sessions: Sessions) -> None:
    started = sessions.start(WANG)
    resumed = sessions.resume(started.id)
    assert resumed == Session(started.id, WANG, started.created_at)
    assert sessions.resume(started.id + "x") is None
    assert sessions.resume(hashlib.sha256(started.id.encode()).hexdigest()) is None  # the stored hash opens nothing
    assert sessions.resume("") is None and sessions.resume(None) is None


def test_an_anonymous_session_has_no_officer(sessions: Sessions) -> None:
    anonymous = sessions.start()
    resumed = sessions.resume(anonymous.id)
    assert resumed is not None and resumed.officer is None


def test_a_session_ends_after_the_idle_time_without_a_request(sessions: Sessions, clock: Clock, database: Database) -> None:
    session = sessions.start(WANG)
    clock.advance(IDLE - 1)
    assert sessions.resume(session.id) is not None  # seen again: the idle time starts anew
    clock.advance(IDLE - 1)
    assert sessions.resume(session.id) is not None
    clock.advance(IDLE + 1)
    assert sessions.resume(session.id) is None
    assert _rows(database) == []  # removed, not just refused


def test_a_session_ends_at_the_absolute_time_however_busy(sessions: Sessions, clock: Clock) -> None:
    session = sessions.start(WANG)
    while clock.now + IDLE / 2 < session.created_at + ABSOLUTE:
        clock.advance(IDLE / 2)
        assert sessions.resume(session.id) is not None
    clock.advance(IDLE / 2 + 1)
    assert clock.now - session.created_at > ABSOLUTE and clock.now - session.created_at < ABSOLUTE + IDLE
    assert sessions.resume(session.id) is None


def test_ending_a_session_ends_only_that_one(sessions: Sessions) -> None:
    first, second = sessions.start(WANG), sessions.start(WANG)
    sessions.end(first)
    assert sessions.resume(first.id) is None
    assert sessions.resume(second.id) is not None


def test_ending_an_officer_ends_all_its_sessions_at_once_and_no_one_elses(sessions: Sessions) -> None:
    wangs = [sessions.start(WANG) for _ in range(3)]
    zhang = sessions.start(ZHANG)
    other_department = sessions.start(Officer("fz-police", "wang.li"))
    anonymous = sessions.start()
    assert sessions.end_officer(WANG) == 3
    assert all(sessions.resume(s.id) is None for s in wangs)
    for kept in (zhang, other_department, anonymous):
        assert sessions.resume(kept.id) is not None
    assert sessions.end_officer(WANG) == 0


def test_starting_a_session_removes_expired_ones(sessions: Sessions, clock: Clock, database: Database) -> None:
    sessions.start(WANG)
    sessions.start()
    clock.advance(IDLE + 1)
    fresh = sessions.start(ZHANG)
    assert _rows(database) == [(hashlib.sha256(fresh.id.encode()).hexdigest(), ZHANG.department, ZHANG.login)]


def test_the_csrf_token_is_the_sessions_own_and_never_stored(sessions: Sessions, database: Database) -> None:
    first, second = sessions.start(WANG), sessions.start(WANG)
    assert first.csrf_token != second.csrf_token
    resumed = sessions.resume(first.id)
    assert resumed is not None and resumed.csrf_token == first.csrf_token  # the same on every form
    assert first.csrf_matches(first.csrf_token)
    assert not first.csrf_matches(second.csrf_token)
    assert not first.csrf_matches(None) and not first.csrf_matches("")
    assert not first.csrf_matches(first.csrf_token[:-1])
    with database.transaction() as cursor:
        dump = repr(cursor.execute("SELECT * FROM ui_sessions").fetchall())
    assert first.csrf_token not in dump


def test_sessions_survive_a_new_store_object(sessions: Sessions, database: Database, clock: Clock) -> None:
    """Another worker (or a restart) reads the same table; creating it again changes nothing."""
    session = sessions.start(WANG)
    again = Sessions(database, idle=IDLE, absolute=ABSOLUTE, clock=clock)
    resumed = again.resume(session.id)
    assert resumed is not None and resumed.officer == WANG
