"""The follower: read-your-writes, one writer across processes, and no double counting or loss when a
follower dies in the middle of a batch."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from domain.timefmt import utcnow
from projections import ledger as ledger_module
from projections.follower import GATHER_COMMANDS
from projections.projector import Projector
from store.database import DatabaseUnavailable
from tests.domain.world import APPROVER, GULOU_POLICE, OTHER_APPROVER, XIAMEN_POLICE, build_province, raise_check
from tests.projections import recount
from tests.projections.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]


def busy_history(app: Any, checks: int = 4, approver: str = APPROVER, issuer: str = GULOU_POLICE) -> None:
    for n in range(checks):
        check = raise_check(app, approver=approver, issuer=issuer)[0]
        app.accept(check.id, issuer)
        if n % 2:
            app.reply(check.id, issuer, "confirmed", {}, 90)
            app.close_check(check.id, approver, "exempted")
        else:
            app.decline(check.id, issuer, "other", "")


def assert_views_match_the_log(stack: Any) -> None:
    """Every view equals a recount from the event store and the aggregates."""
    now = stack.views.clock()
    views = stack.views
    head = stack.head()
    assert views.position() == head
    assert views.ledger_size() == len(recount.notifications(stack.log))
    items = []
    after = 0
    while True:
        page = views.audit_events(after, 1000)
        items.extend(page["items"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert items == recount.audit_items(stack.app, stack.log)
    listed = views.list_checks(limit=500)[0]
    want = sorted(
        (recount.list_item(c, now) for c in recount.all_checks(stack.app, stack.log)),
        key=lambda item: (item["raised_at"], item["id"]),
        reverse=True,
    )
    assert [{**i, "overdue": None} for i in listed] == [{**i, "overdue": None} for i in want]
    got = views.coverage()
    assert got["as_of_position"] == head
    del got["as_of_position"]
    assert recount.json_equal(got, recount.coverage(stack.app, stack.log, now))


# -- min_position ---------------------------------------------------------------------------


def test_wait_for_times_out_for_a_position_never_reached(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url)
    build_province(stack.app)
    head = stack.sync()
    started = time.monotonic()
    assert stack.views.wait_for(head + 1, timeout=0.5) is False
    assert 0.45 <= time.monotonic() - started < 2.0
    assert stack.views.wait_for(head, timeout=0.5) is True
    assert stack.views.wait_for(0, timeout=0) is True


def test_wait_for_returns_once_the_position_is_reached(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, start=False)
    build_province(stack.app)
    position = raise_check(stack.app)[1]
    assert stack.views.wait_for(position, timeout=0.3) is False  # nobody follows the log yet
    assert stack.views.lag() == stack.head()
    threading.Timer(0.3, stack.views.start).start()
    started = time.monotonic()
    assert stack.views.wait_for(position, timeout=10) is True
    assert time.monotonic() - started < 5
    assert stack.views.lag() == 0
    # read-your-writes right after a command: nudge, then wait
    _, position = stack.app.accept(raise_check(stack.app)[0].id, GULOU_POLICE)
    stack.views.nudge()
    assert stack.views.wait_for(position, timeout=5)
    assert stack.views.position() >= position


def test_position_is_read_from_the_database(durable_database_url: str, make_stack) -> None:
    """Another process's views (not following themselves) see what the leader wrote."""
    leader = make_stack(durable_database_url)
    other = make_stack(durable_database_url, start=False)
    build_province(leader.app)
    head = leader.sync()
    assert other.views.position() == head
    assert other.views.wait_for(head, timeout=0.1)
    assert other.views.lag() == 0


def test_the_head_and_the_position_come_in_one_query_and_agree_with_each_alone(durable_database_url: str, make_stack) -> None:
    """The follower's wake-up reads the log's head and the views' position together (one statement, one
    snapshot); they are the figures the two separate reads give, behind and caught up."""
    leader = make_stack(durable_database_url, start=False)
    follower = leader.views.follower
    assert follower.head_and_position() == (0, 0)
    build_province(leader.app)
    head = leader.head()
    assert head > 0
    assert follower.head_and_position() == (head, follower.position()) == (head, 0)
    follower.follow_once(leader.database.leader_lock("views"))
    assert follower.head_and_position() == (head, head)
    assert leader.views.lag() == 0


# -- crashes --------------------------------------------------------------------------------


def test_a_batch_failing_midway_is_redone_whole(durable_database_url: str, make_stack, monkeypatch, caplog) -> None:
    """An error inside the transaction, after the batch wrote check and coverage rows: nothing of the
    batch stays, the follower survives, and the retry counts everything exactly once."""
    stack = make_stack(durable_database_url, batch_size=7, start=False)
    build_province(stack.app)
    busy_history(stack.app, checks=6)
    original = ledger_module.LedgerBatch.write
    calls = {"n": 0}
    seen: dict[str, Any] = {}

    def failing_write(self: Any, cursor: Any) -> None:
        calls["n"] += 1
        original(self, cursor)  # the ledger's rows too: the whole batch is written when it fails
        if calls["n"] in (3, 4):
            if calls["n"] == 3:
                seen["position"] = stack.views.position()  # committed state, read beside the transaction
                seen["dump"] = recount.dump(stack.database)
            raise RuntimeError("killed in the middle of a batch")

    monkeypatch.setattr(ledger_module.LedgerBatch, "write", failing_write)
    caplog.set_level(logging.ERROR, logger="projections.follower")
    stack.views.start()
    stack.sync()
    assert calls["n"] >= 6
    assert seen["position"] > 0 and seen["dump"]["view_tracking"]
    assert "killed in the middle of a batch" in caplog.text  # logged, not silent
    assert stack.views.follower._thread is not None and stack.views.follower._thread.is_alive()
    assert_views_match_the_log(stack)


def test_a_failed_batch_leaves_the_views_exactly_at_the_previous_one(sqlite_url: str, make_stack, monkeypatch) -> None:
    stack = make_stack(sqlite_url, batch_size=10, start=False)
    build_province(stack.app)
    busy_history(stack.app, checks=3)
    lock = stack.database.leader_lock("views")
    views = stack.views
    assert views.follow_once(lock) == stack.head()
    before = recount.dump(stack.database)
    busy_history(stack.app, checks=2)

    def broken(self: Any, cursor: Any, batch: Any, position: int) -> None:
        original(self, cursor, batch, position)
        raise DatabaseUnavailable("disk went away")

    original = Projector._write
    monkeypatch.setattr(Projector, "_write", broken)
    with pytest.raises(DatabaseUnavailable):
        views.follow_once(lock)
    assert recount.dump(stack.database) == before
    monkeypatch.setattr(Projector, "_write", original)
    views.follow_once(lock)
    assert_views_match_the_log(stack)


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from api.bootstrap import _open_database, build_platform
    from api.settings import Settings, parse_database_url
    from domain.platform import Platform
    from projections import ledger
    from store.eventlog import EventLog
    from projections.views import Views
    from signing.keystore import KeyStore
    from tests.domain.fakes import FakeClaims, FakeSealer
    from tests.projections.conftest import platform_env

    url, keys, marker = {url!r}, {keys!r}, Path({marker!r})
    original = ledger.LedgerBatch.write
    def write_then_hang(self, cursor):
        original(self, cursor)
        if self.frontier.size > 20:
            marker.write_text("in the middle of a batch")
            time.sleep(120)
    ledger.LedgerBatch.write = write_then_hang
    database = _open_database(parse_database_url(url), Settings(db_pool_size=2))
    app, subjects = build_platform(platform_env(url), Path(keys), sealer=FakeSealer(), claims=FakeClaims())
    views = Views(database, app, EventLog(app, database), ledger_signer=KeyStore(Path(keys)).ledger_signer(),
                  personal=subjects, checkpoint_every=5, batch_size=8)
    views.start()
    time.sleep(120)
    """
)


def test_a_follower_process_killed_mid_batch(durable_database_url: str, make_stack, ledger_keys, tmp_path) -> None:
    """SIGKILL while a batch's rows are written but not committed: the next follower (another process)
    takes over and ends with every view exactly right."""
    # a hand-moved clock: no checkpoint by time (only every 5 leaves) however slow the machine
    stack = make_stack(durable_database_url, start=False, checkpoint_every=5, batch_size=8, clock=Clock())
    build_province(stack.app)
    busy_history(stack.app, checks=4)
    marker = tmp_path / "marker"
    script = CHILD.format(root=str(ROOT), url=durable_database_url, keys=str(ledger_keys.key_dir), marker=str(marker))
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child follower died on its own"
            assert time.monotonic() < deadline, "the child follower never reached the middle of a batch"
            time.sleep(0.05)
        stuck_at = stack.views.position()
        assert 0 < stuck_at < stack.head()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    busy_history(stack.app, checks=1, approver=OTHER_APPROVER, issuer=XIAMEN_POLICE)
    stack.views.start()
    stack.sync(timeout=30)
    assert_views_match_the_log(stack)
    sizes = [cp["tree_size"] for n in range(1, stack.head() + 1) if (cp := stack.views.checkpoint(n))]
    assert sizes == list(range(5, stack.head() + 1, 5))


# -- several followers ----------------------------------------------------------------------


def test_followers_of_several_processes_write_each_event_once(durable_database_url: str, make_stack) -> None:
    # hand-moved clocks: no checkpoint by time between the two dumps compared at the end
    one = make_stack(durable_database_url, batch_size=5, clock=Clock())
    two = make_stack(durable_database_url, batch_size=5, clock=Clock())
    build_province(one.app)
    errors: list[BaseException] = []

    def work(stack: Any, approver: str, issuer: str) -> None:
        try:
            for _ in range(3):
                busy_history(stack.app, checks=2, approver=approver, issuer=issuer)
                stack.views.nudge()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(one, APPROVER, GULOU_POLICE)),
        threading.Thread(target=work, args=(two, OTHER_APPROVER, XIAMEN_POLICE)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    one.sync()
    two.sync()
    assert_views_match_the_log(one)
    assert recount.dump(one.database) == recount.dump(two.database)


def test_the_follower_survives_database_errors(sqlite_url: str, make_stack, monkeypatch, caplog) -> None:
    stack = make_stack(sqlite_url, start=False)
    build_province(stack.app)
    failures = {"left": 3}
    original = Projector.write

    def flaky(self: Any, cursor: Any, batch: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise DatabaseUnavailable("database is locked")
        original(self, cursor, batch)

    monkeypatch.setattr(Projector, "write", flaky)
    caplog.set_level(logging.WARNING, logger="projections.follower")
    stack.views.start()
    stack.sync(timeout=30)
    assert failures["left"] == 0
    failed = [r for r in caplog.records if "database is locked" in (str(r.exc_info[1]) if r.exc_info else r.getMessage())]
    assert len(failed) == 3
    deadline = time.monotonic() + 5
    while "recovered after 3 failures" not in caplog.text:  # logged just after the batch commits
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert_views_match_the_log(stack)


def test_start_and_stop_are_idempotent(sqlite_url: str, make_stack) -> None:
    stack = make_stack(sqlite_url)
    thread = stack.views.follower._thread
    stack.views.start()
    assert stack.views.follower._thread is thread
    stack.views.stop()
    stack.views.stop()
    assert thread is not None and not thread.is_alive()
    build_province(stack.app)
    assert not stack.views.wait_for(stack.head(), timeout=0.3)
    stack.views.start()
    stack.sync()


def test_a_second_writer_without_the_lock_cannot_count_twice(durable_database_url: str, make_stack, ledger_keys) -> None:
    """Belt and braces: should the leader lock ever fail, a second writer waits for the first one's batch
    (on the tracking rows, or SQLite's write lock) and then finds nothing left to do."""
    stack = make_stack(durable_database_url, start=False)
    build_province(stack.app)
    busy_history(stack.app, checks=3)

    def projector() -> Projector:
        return Projector(
            stack.app, stack.log, signer=ledger_keys.signer, checkpoint_every=1000, clock=utcnow, personal=stack.views.personal
        )

    stack.views.position()  # creates the tables
    outcome: dict[str, Any] = {}

    def second() -> None:
        try:
            with stack.database.transaction() as cursor:
                outcome["applied"] = projector().apply_next(cursor)
        except Exception as error:  # the expected refusal, checked below
            outcome["error"] = error

    with stack.database.transaction() as cursor:
        assert projector().apply_next(cursor) == stack.head()
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # the second writer is now blocked behind this transaction
    thread.join(timeout=30)
    assert outcome == {"applied": 0}
    assert_views_match_the_log(stack)


def test_a_woken_follower_gathers_commands_until_enough_have_come_or_a_reader_waits(sqlite_url: str, make_stack) -> None:
    """Under load the follower applies the commands of a while in one batch (far less CPU per event than
    batches of a few), not each few milliseconds' worth; a reader waiting for a position has it go at once."""
    follower = make_stack(sqlite_url, start=False).views.follower
    for _ in range(GATHER_COMMANDS - 1):
        follower.nudge()
    assert not follower.gathered()  # it would wait (at most GATHER_SECONDS) for more
    follower.nudge()
    assert follower.gathered()
    waited_for = make_stack(sqlite_url, start=False).views.follower
    waited_for.nudge()
    assert not waited_for.gathered()
    waited_for.nudge(urgent=True)
    assert waited_for.gathered()
