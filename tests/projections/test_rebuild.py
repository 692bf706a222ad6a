"""``nocert views rebuild``: the rebuilt views equal the live ones, even while the service runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from projections.ledger import LedgerMismatch
from tests.domain.world import APPROVER, CITY_POLICE, GULOU_POLICE, OTHER_APPROVER, XIAMEN_POLICE, build_province, raise_check
from tests.projections import recount
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
    stack = make_stack(durable_database_url, checkpoint_every=5, batch_size=7)
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
    stack = make_stack(durable_database_url, checkpoint_every=5, batch_size=3)
    reader = make_stack(durable_database_url, start=False)  # another process, reading only
    story(stack.app)
    stack.sync()
    stop = threading.Event()
    errors: list[BaseException] = []
    positions: list[int] = []

    def commands() -> None:
        try:
            while not stop.is_set():
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
    stack = make_stack(durable_database_url, checkpoint_every=5)
    story(stack.app)
    stack.sync()
    with stack.database.transaction() as cursor:
        cursor.execute("UPDATE ledger_checkpoints SET root_hash = ? WHERE tree_size = 10", ("00" * 32,))
    before = recount.dump(stack.database)
    with pytest.raises(LedgerMismatch, match="size 10"):
        stack.views.rebuild()
    assert recount.dump(stack.database) == before  # nothing changed


def test_rebuild_of_an_empty_log(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, start=False)
    calls: list[tuple[int, int]] = []
    assert stack.views.rebuild(lambda done, total: calls.append((done, total))) == 0
    assert calls == [(0, 0)]
    assert stack.views.position() == 0
