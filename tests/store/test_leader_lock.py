"""The views' leader lock: one holder per deployment, released on demand and when its holder dies."""

from __future__ import annotations

import time

from api.bootstrap import _open_database
from api.settings import Settings, parse_database_url


def test_one_holder_at_a_time(durable_database_url: str) -> None:
    database = _open_database(parse_database_url(durable_database_url), Settings(db_pool_size=2))
    try:
        one, two = database.leader_lock("views"), database.leader_lock("views")
        other = database.leader_lock("something-else")
        assert one.try_acquire()
        assert one.try_acquire()  # already held: still ours
        assert not two.try_acquire()
        assert other.try_acquire()
        one.release()
        assert two.try_acquire()
        assert not one.try_acquire()
        two.release()
        for _ in range(3):  # taken and let go again and again (the follower does it for every run)
            assert one.try_acquire()
            one.release()
        assert two.try_acquire()
        two.release()
        other.release()
        for lock in (one, two, other):
            getattr(lock, "close", lambda: None)()
    finally:
        database.close()


def test_a_dead_session_frees_the_lock(postgres_url: str) -> None:
    import psycopg

    database = _open_database(parse_database_url(postgres_url), Settings(db_pool_size=2))
    try:
        holder, waiter = database.leader_lock("views"), database.leader_lock("views")
        assert holder.try_acquire()
        pid = holder.locks._connection.info.backend_pid  # type: ignore[attr-defined]  # the process's lock session
        with psycopg.connect(parse_database_url(postgres_url).conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while not waiter.try_acquire():  # the backend exits just after the signal
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not holder.try_acquire()  # finds its session dead, and the lock taken
        waiter.close()
        assert holder.try_acquire()  # on a new session
        holder.close()
    finally:
        database.close()
