"""``nocert views rebuild``: the rebuilt views equal the live ones, even while the service runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from projections import schema
from projections.ledger import LedgerMismatch
from projections.projector import positions
from tests.domain.world import (
    APPROVER,
    CITY_POLICE,
    GULOU_POLICE,
    OTHER_APPROVER,
    XIAMEN_POLICE,
    build_province,
    raise_check,
)
from tests.projections import recount
from tests.projections.conftest import Clock
from tests.projections.test_follower import assert_views_match_the_log, busy_history


def story(app: Any) -> None:
    build_province(app)
    busy_history(app, checks=4)
    check = raise_check(app)[0]
    app.forward(check.id, GULOU_POLICE, CITY_POLICE, "市局管辖")
    check = raise_check(app, approver=OTHER_APPROVER, issuer=XIAMEN_POLICE)[0]
    app.accept(check.id, XIAMEN_POLICE)
    app.request_info(check.id, XIAMEN_POLICE, "?")
    check = raise_check(app)[0]
    app.withdraw(check.id, APPROVER, "撤回")


def test_rebuild_equals_live(durable_database_url: str, make_stack) -> None:
    # A hand-moved clock: the follower signs no checkpoint by time (API.md §7: within 10 s of an
    # uncovered leaf) between the dump of the live views and the dump of the rebuilt ones.
    stack = make_stack(durable_database_url, checkpoint_every=5, batch_size=7, clock=Clock())
    story(stack.app)
    head = stack.sync()
    live = recount.dump(stack.database)
    assert live["ledger_checkpoints"] and live["view_checks"] and live["view_coverage"]

    calls: list[tuple[int, int, int]] = []

    def progress(done: int, total: int) -> None:
        # readers, on other connections, keep seeing the old views until the rebuild commits
        calls.append((done, total, stack.views.position()))

    replayed = stack.views.rebuild(progress)
    assert replayed == head
    assert recount.dump(stack.database) == live
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    assert calls[-1][:2] == (head, head)
    assert all(seen == head for _, _, seen in calls)
    assert len(calls) == -(-head // 7)

    # the follower carries on after a rebuild, and a second one is the same again
    busy_history(stack.app, checks=2)
    stack.sync()
    live = recount.dump(stack.database)
    stack.views.rebuild()
    assert recount.dump(stack.database) == live
    assert_views_match_the_log(stack)


def test_rebuild_while_the_service_runs(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, checkpoint_every=5, batch_size=3, clock=Clock())  # as above
    reader = make_stack(durable_database_url, start=False)  # another process, reading only
    story(stack.app)
    stack.sync()
    stop = threading.Event()
    errors: list[BaseException] = []
    positions: list[int] = []

    def commands() -> None:
        try:
            # (at most 400 checks: assert_views_match_the_log lists 500)
            for _ in range(400):
                if stop.is_set():
                    break
                busy_history(stack.app, checks=1)
                stack.views.nudge()
        except BaseException as error:  # reported below
            errors.append(error)

    def reads() -> None:
        try:
            while not stop.is_set():
                positions.append(reader.views.position())
                reader.views.list_checks(limit=5)
                reader.views.coverage()
                time.sleep(0.005)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=commands), threading.Thread(target=reads)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        first = stack.views.rebuild()
        time.sleep(0.2)
        second = stack.views.rebuild()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors
    assert 0 < first <= second
    assert positions == sorted(positions)  # never a half-built view: positions only grow
    stack.sync()
    live = recount.dump(stack.database)
    stack.views.rebuild()
    assert recount.dump(stack.database) == live
    assert_views_match_the_log(stack)


def test_rebuild_refuses_a_ledger_that_contradicts_a_signed_checkpoint(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, checkpoint_every=5, clock=Clock())
    story(stack.app)
    stack.sync()
    with stack.database.transaction() as cursor:
        cursor.execute("UPDATE ledger_checkpoints SET root_hash = ? WHERE tree_size = 10", ("00" * 32,))
    before = recount.dump(stack.database)
    with pytest.raises(LedgerMismatch, match="size 10"):
        stack.views.rebuild()
    assert recount.dump(stack.database) == before  # nothing changed
    assert not shadow_tables(stack)  # and the shadow is gone


def test_rebuild_of_an_empty_log(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, start=False)
    calls: list[tuple[int, int]] = []
    assert stack.views.rebuild(lambda done, total: calls.append((done, total))) == 0
    assert calls == [(0, 0)]
    assert stack.views.position() == 0


# -- the rebuild beside a running service (shadow tables, short transactions, one swap) ----------

RAISED = "nocert:check:Raised"


def history(stack: Any, events: int) -> int:
    """Commands until the log holds at least ``events`` events; returns the head."""
    while stack.head() < events:
        busy_history(stack.app, checks=10)
    return stack.head()


def schema_names(stack: Any) -> set[str]:
    """The views' tables and indexes in the database, shadows included."""
    with stack.database.reading() as cursor:
        names = schema._existing(cursor, stack.database.dialect)
    return {name for name in names if name.startswith(("view_", "ledger_", schema.SHADOW)) or "autoindex" in name}


def shadow_tables(stack: Any) -> set[str]:
    return {name for name in schema_names(stack) if schema.SHADOW in name}


def snapshot(database: Any) -> tuple[dict[str, int], int, int, int, int]:
    """What one reader sees in one transaction: the positions and what the views hold."""
    with database.reading() as cursor:
        tracked = positions(cursor)
        leaves = cursor.execute("SELECT COUNT(*) FROM ledger_leaves").fetchone()[0]
        size = cursor.execute("SELECT size FROM ledger_state").fetchone()[0]
        checks = cursor.execute("SELECT COUNT(*) FROM view_checks").fetchone()[0]
        raised = cursor.execute("SELECT COALESCE(SUM(raised), 0) FROM view_coverage").fetchone()[0]
    return tracked, int(leaves), int(size), int(checks), int(raised)


def assert_whole(stack: Any, seen: list[tuple[dict[str, int], int, int, int, int]]) -> None:
    """Every snapshot is the log up to its positions, exactly (never a partial view), and no position
    ever went back."""
    ids = [(n.id, n.topic == RAISED) for n in recount.notifications(stack.log)]

    def upto(position: int, raised_only: bool = False) -> int:
        return sum(1 for id, raised in ids if id <= position and (raised or not raised_only))

    for tracked, leaves, size, checks, raised in seen:
        assert leaves == size == upto(tracked["ledger"])
        assert checks == upto(tracked["checks"], raised_only=True)
        assert raised == upto(tracked["coverage"], raised_only=True)
    for view in seen[0][0]:
        assert [tracked[view] for tracked, *_ in seen] == sorted(tracked[view] for tracked, *_ in seen)


def test_commands_and_readers_carry_on_during_a_rebuild(durable_database_url: str, make_stack, monkeypatch) -> None:
    stack = make_stack(durable_database_url, checkpoint_every=50, clock=Clock())
    reader = make_stack(durable_database_url, start=False)  # another process, reading only
    build_province(stack.app)
    history(stack, 3000)
    stack.sync()
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[dict[str, int], int, int, int, int]] = []
    commands = {"n": 0}

    # how long each of the rebuild's transactions holds its write lock (SQLite: the database's one)
    original = stack.database.transaction
    holds: list[float] = []

    @contextmanager
    def timed() -> Iterator[Any]:
        with original() as cursor:
            start = time.monotonic()
            try:
                yield cursor
            finally:
                if threading.current_thread().name == "rebuild":
                    holds.append(time.monotonic() - start)

    monkeypatch.setattr(stack.database, "transaction", timed)

    def command_loop() -> None:
        try:
            while not stop.is_set():
                busy_history(stack.app, checks=1)
                commands["n"] += 1
                stack.views.nudge()
        except BaseException as error:  # reported below
            errors.append(error)

    def read_loop() -> None:
        try:
            while not stop.is_set():
                seen.append(snapshot(reader.database))
                reader.views.list_checks(limit=5)
                reader.views.coverage()
        except BaseException as error:  # reported below
            errors.append(error)

    result: dict[str, Any] = {}
    calls: list[int] = []

    def rebuild() -> None:
        try:
            result["replayed"] = stack.views.rebuild(lambda done, total: calls.append(done), chunk_size=50)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=command_loop), threading.Thread(target=read_loop)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    before = commands["n"]
    rebuilder = threading.Thread(target=rebuild, name="rebuild")
    rebuilder.start()
    rebuilder.join(timeout=120)
    during = commands["n"] - before
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    assert not rebuilder.is_alive()
    assert not errors, errors
    assert result["replayed"] >= 3000 and len(calls) > 30  # many short transactions
    assert during > 0  # commands went on while it ran
    assert max(holds) < 2.0, max(holds)  # far from the 10 s busy timeout
    print(f"\n{stack.database.dialect}: rebuilt {result['replayed']} events in {len(holds)} transactions, "
          f"longest {max(holds) * 1000:.0f} ms; {during} commands ran beside it")
    assert_whole(stack, seen)
    stack.sync()
    live = recount.dump(stack.database)
    stack.views.rebuild()
    assert recount.dump(stack.database) == live  # (more checks than assert_views_match_the_log lists)


def test_rebuilds_repeat(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, checkpoint_every=5, batch_size=7, clock=Clock())
    story(stack.app)
    stack.sync()
    names = schema_names(stack)
    assert not shadow_tables(stack)
    for _ in range(3):
        busy_history(stack.app, checks=2)
        stack.sync()
        live = recount.dump(stack.database)
        stack.views.rebuild(chunk_size=4)
        assert recount.dump(stack.database) == live
        assert schema_names(stack) == names  # the live names, no shadow left
    assert_views_match_the_log(stack)


class Crash(Exception):
    pass


def test_a_crashed_rebuild_leaves_the_live_views_and_the_next_succeeds(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, checkpoint_every=5, clock=Clock())
    story(stack.app)
    head = stack.sync()
    before = recount.dump(stack.database)

    def crash(done: int, total: int) -> None:
        if done >= 12:  # after three chunks
            raise Crash

    with pytest.raises(Crash):
        stack.views.rebuild(crash, chunk_size=4)
    assert recount.dump(stack.database) == before
    assert shadow_tables(stack)  # what a killed process leaves
    assert stack.views.rebuild(chunk_size=4) == head  # drops it and starts again
    assert recount.dump(stack.database) == before
    assert not shadow_tables(stack)
    assert_views_match_the_log(stack)


def test_a_rebuild_that_fails_in_the_swap_changes_nothing(durable_database_url: str, make_stack, monkeypatch) -> None:
    stack = make_stack(durable_database_url, checkpoint_every=5, clock=Clock())
    story(stack.app)
    stack.sync()
    before = recount.dump(stack.database)
    names = schema_names(stack)
    swap = schema.swap_shadow

    def failing_swap(cursor: Any, dialect: str) -> None:
        swap(cursor, dialect)  # the live tables are dropped and replaced, then the transaction fails
        raise Crash

    monkeypatch.setattr(schema, "swap_shadow", failing_swap)
    with pytest.raises(Crash):
        stack.views.rebuild(chunk_size=4)
    assert recount.dump(stack.database) == before
    assert schema_names(stack) - shadow_tables(stack) == names
    monkeypatch.setattr(schema, "swap_shadow", swap)
    stack.views.rebuild(chunk_size=4)
    assert recount.dump(stack.database) == before
    assert schema_names(stack) == names
    assert_views_match_the_log(stack)


def test_the_swap_gives_way_to_a_reader_holding_a_view(durable_database_url: str, make_stack) -> None:
    """A reader reads one view, then (while the swap waits for it) another: on PostgreSQL their locks
    cross; the swap lets go and tries again, and the reader sees the old views, whole."""
    stack = make_stack(durable_database_url, checkpoint_every=5, clock=Clock())
    reader = make_stack(durable_database_url, start=False)
    story(stack.app)
    head = stack.sync()
    holding = threading.Event()
    seen: dict[str, Any] = {}

    def read() -> None:
        try:
            with reader.database.reading() as cursor:
                seen["checks"] = cursor.execute("SELECT COUNT(*) FROM view_checks").fetchone()[0]
                holding.set()
                time.sleep(0.6)  # the swap is waiting for view_checks by now
                seen["positions"] = positions(cursor)
        except BaseException as error:  # reported below
            seen["error"] = error
            holding.set()

    thread = threading.Thread(target=read)
    thread.start()
    holding.wait()
    assert stack.views.rebuild() == head
    thread.join()
    assert "error" not in seen
    assert seen["positions"] == dict.fromkeys(seen["positions"], head)
    assert seen["checks"] == len(recount.check_ids(stack.log))


def test_a_moved_approver_counts_its_earlier_checks_where_they_were_raised(durable_database_url: str, make_stack) -> None:
    """API.md §10: a region change applies to checks raised afterwards. Coverage by region keeps a check
    under the region its approver had when it was raised, also for the events it gets after the move,
    live and rebuilt alike."""
    stack = make_stack(durable_database_url, checkpoint_every=5, batch_size=3, clock=Clock())
    app = stack.app
    build_province(app)
    before = raise_check(app)[0]
    stack.sync()
    app.change_department(APPROVER, region="350200")
    after = raise_check(app)[0]
    app.reply(before.id, GULOU_POLICE, "confirmed", {}, 90)  # answered after the move: still counted in 3501
    app.close_check(before.id, APPROVER, "exempted")
    app.accept(after.id, GULOU_POLICE)
    stack.sync()
    fuzhou = stack.views.coverage(region="350100")["totals"]
    xiamen = stack.views.coverage(region="350200")["totals"]
    assert (fuzhou["raised"], fuzhou["closed_exempted"], fuzhou["open"]) == (1, 1, 0)
    assert (xiamen["raised"], xiamen["closed_exempted"], xiamen["open"]) == (1, 0, 1)
    assert_views_match_the_log(stack)
    live = recount.dump(stack.database)
    stack.views.rebuild()
    assert recount.dump(stack.database) == live
