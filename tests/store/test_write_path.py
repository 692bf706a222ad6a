"""The write path on both stores: concurrent commands share transactions under group commit, each gets its
own position, a stale command is refused alone, attachments commit with the events or not at all, and a
batch retried after a lost answer is recognised instead of being recorded twice or refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from api.settings import parse_database_url, store_env
from domain.errors import ConcurrentUpdate
from domain.platform import Platform
from store.writes import EventWrite
from tests.domain.fakes import FakeClaims, FakeSealer
from tests.domain.world import APPROVER, GULOU_POLICE, build_province, new_check_id

DEADLINE = 20.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


class Table:
    """A table the test's attachments write to, in the store's own database."""

    def __init__(self, app: Platform) -> None:
        self.app = app

    def rows(self) -> list[tuple[int, str]]:
        recorder: Any = self.app.recorder
        if hasattr(recorder.datastore, "schema"):  # PostgreSQL
            with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
                cursor.execute(f'SELECT position, note FROM "{recorder.datastore.schema}".attached ORDER BY position')
                return [(row["position"], row["note"]) for row in cursor.fetchall()]
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT position, note FROM attached ORDER BY position")
            return [(row[0], row[1]) for row in cursor.fetchall()]

    def create(self) -> None:
        recorder: Any = self.app.recorder
        if hasattr(recorder.datastore, "schema"):
            with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
                cursor.execute(f'CREATE TABLE "{recorder.datastore.schema}".attached (position BIGINT, note TEXT)')
        else:
            with recorder.datastore.transaction(commit=True) as cursor:
                cursor.execute("CREATE TABLE attached (position INTEGER, note TEXT)")


class Note:
    """An attachment writing one row per event of its save."""

    def __init__(self, note: str, fail: bool = False) -> None:
        self.note, self.fail = note, fail

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        for position in positions:
            cursor.execute("INSERT INTO attached (position, note) VALUES (?, ?)", (position, self.note))
        if self.fail:
            raise RuntimeError("the attachment failed after writing")


@pytest.fixture
def platform(durable_database_url: str) -> Iterator[Platform]:
    app = Platform(
        store_env(parse_database_url(durable_database_url), pool_size=4), sealer=FakeSealer(), claims=FakeClaims()
    )
    build_province(app)
    yield app
    app.close()


def hold_first_batch(app: Platform) -> tuple[threading.Event, threading.Event]:
    """Makes the next batch wait (entered, release) so that writes queue up behind it deterministically."""
    group: Any = app.recorder.group  # type: ignore[attr-defined]
    original = group._commit
    entered, release = threading.Event(), threading.Event()

    def held(writes: Sequence[EventWrite]) -> Any:
        if not entered.is_set():
            entered.set()
            assert release.wait(DEADLINE)
        return original(writes)

    group._commit = held
    return entered, release


def positions_of(app: Platform, after: int) -> dict[tuple[UUID, int], int]:
    return {
        (n.originator_id, n.originator_version): n.id
        for n in app.recorder.select_notifications(start=after, limit=1000, inclusive_of_start=False)
    }


def test_concurrent_commands_share_transactions_and_each_answers_its_own_position(platform: Platform) -> None:
    checks = [new_check_id(platform) for _ in range(12)]
    start = platform.recorder.max_notification_id() or 0
    group: Any = platform.recorder.group  # type: ignore[attr-defined]
    batches_before = group.batches
    entered, release = hold_first_batch(platform)
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = pool.submit(platform.accept, checks[0], GULOU_POLICE)
        assert entered.wait(DEADLINE)
        rest = [pool.submit(platform.accept, check_id, GULOU_POLICE) for check_id in checks[1:]]
        wait_until(lambda: len(group._pending) == 11, "eleven queued commands")
        release.set()
        answered = {check_id: future.result(DEADLINE)[1] for check_id, future in zip(checks, [first, *rest], strict=True)}
    recorded = positions_of(platform, start)
    assert answered == {check_id: recorded[(check_id, 2)] for check_id in checks}
    assert sorted(answered.values()) == list(range(start + 1, start + 13)), "positions are gap-free, in commit order"
    assert group.batches - batches_before == 2, "the eleven queued commands committed in one transaction"


def test_a_stale_command_is_refused_alone_and_its_batch_mates_commit(platform: Platform) -> None:
    a, b, c = (new_check_id(platform) for _ in range(3))
    first_copy, stale_copy = platform.check(a), platform.check(a)
    group: Any = platform.recorder.group  # type: ignore[attr-defined]
    entered, release = hold_first_batch(platform)
    with ThreadPoolExecutor(max_workers=4) as pool:
        opener = pool.submit(platform.accept, c, GULOU_POLICE)
        assert entered.wait(DEADLINE)
        winner = pool.submit(platform.accept, first_copy, GULOU_POLICE)
        wait_until(lambda: len(group._pending) == 1, "the first command queued")
        loser = pool.submit(platform.decline, stale_copy, GULOU_POLICE, "no_record", "")
        mate = pool.submit(platform.accept, b, GULOU_POLICE)
        wait_until(lambda: len(group._pending) == 3, "three queued commands")
        release.set()
        opener.result(DEADLINE)
        assert winner.result(DEADLINE)[0].status == "accepted"
        with pytest.raises(ConcurrentUpdate):
            loser.result(DEADLINE)
        assert mate.result(DEADLINE)[0].status == "accepted"
    assert platform.check(a).status == "accepted" and platform.check(a).version == 2
    after = platform.recorder.max_notification_id()
    _, position = platform.accept(new_check_id(platform), GULOU_POLICE)
    assert position == (after or 0) + 2, "a refused write leaves no gap in the positions (raise + accept)"


def test_a_write_whose_version_is_stored_already_is_refused_alone_without_a_gap(platform: Platform) -> None:
    """The batch's one-statement insert inserts nothing (and draws no position) when a key is taken; the
    batch is then planned and its other writes commit."""
    a, b, c = (new_check_id(platform) for _ in range(3))
    stale = platform.check(a)
    platform.accept(a, GULOU_POLICE)  # takes version 2 before the batch
    group: Any = platform.recorder.group  # type: ignore[attr-defined]
    entered, release = hold_first_batch(platform)
    with ThreadPoolExecutor(max_workers=3) as pool:
        opener = pool.submit(platform.accept, c, GULOU_POLICE)
        assert entered.wait(DEADLINE)
        loser = pool.submit(platform.decline, stale, GULOU_POLICE, "no_record", "")
        mate = pool.submit(platform.accept, b, GULOU_POLICE)
        wait_until(lambda: len(group._pending) == 2, "two queued commands")
        release.set()
        opener.result(DEADLINE)
        with pytest.raises(ConcurrentUpdate):
            loser.result(DEADLINE)
        _, mate_position = mate.result(DEADLINE)
    assert mate_position == platform.recorder.max_notification_id()
    _, position = platform.accept(new_check_id(platform), GULOU_POLICE)
    assert position == mate_position + 2, "the refused write drew no position (raise + accept follow at once)"


def test_attachments_commit_with_their_events_and_their_positions(platform: Platform) -> None:
    table = Table(platform)
    table.create()
    platform.save_hooks.append(lambda aggregates, events: [Note("accepted")] if len(events) == 1 else [])
    check_id = new_check_id(platform)  # raise: one event
    _, position = platform.accept(check_id, GULOU_POLICE)
    raised = positions_of(platform, 0)[(check_id, 1)]
    assert table.rows() == [(raised, "accepted"), (position, "accepted")]


def test_a_failing_attachment_records_nothing(platform: Platform) -> None:
    table = Table(platform)
    table.create()
    check_id = new_check_id(platform)
    before = platform.recorder.max_notification_id()
    platform.save_hooks.append(lambda aggregates, events: [Note("doomed", fail=True)])
    with pytest.raises(RuntimeError):
        platform.accept(check_id, GULOU_POLICE)
    platform.save_hooks.clear()
    assert platform.recorder.max_notification_id() == before
    assert table.rows() == []
    assert platform.check(check_id).status == "raised"
    # (A rolled-back insert may leave PostgreSQL's sequence a number further: positions stay ordered.)
    assert platform.accept(check_id, GULOU_POLICE)[1] > (before or 0)


def test_a_batch_retried_after_its_answer_was_lost_is_recognised_not_doubled(platform: Platform) -> None:
    check = platform.check(new_check_id(platform))
    check.accept(GULOU_POLICE)
    stored = [platform.mapper.to_stored_event(event) for event in check.collect_events()]
    recorder: Any = platform.recorder
    first = recorder._commit_batch([EventWrite(stored)])
    again = recorder._commit_batch([EventWrite(stored)])
    assert first == again and len(first[0]) == 1
    assert [n.id for n in recorder.select_notifications(start=first[0][0], limit=10)] == first[0]
    assert platform.check(check.id).version == 2


def test_a_save_of_another_version_is_refused_even_when_retried(platform: Platform) -> None:
    check_id = new_check_id(platform)
    mine, theirs = platform.check(check_id), platform.check(check_id)
    platform.accept(mine, GULOU_POLICE)
    theirs.withdraw(APPROVER, "no longer needed")
    stored = [platform.mapper.to_stored_event(event) for event in theirs.collect_events()]
    outcome = platform.recorder._commit_batch([EventWrite(stored)])  # type: ignore[attr-defined]
    assert isinstance(outcome[0], Exception) and "conflict" in str(outcome[0])


def test_a_lone_stale_write_takes_the_short_path_and_is_refused_alone_without_a_gap(platform: Platform) -> None:
    """With nothing queued, a write goes through the lone path (no existence query); a taken key there
    is refused as a conflict, draws no position, and leaves no row behind."""
    check_id = new_check_id(platform)
    stale = platform.check(check_id)
    recorder: Any = platform.recorder
    lone_calls: list[Any] = []
    original = recorder._commit_lone

    def counted(write: EventWrite) -> Any:
        outcome = original(write)
        lone_calls.append(outcome)
        return outcome

    recorder._commit_lone = counted
    _, accepted = platform.accept(check_id, GULOU_POLICE)
    assert lone_calls == [[accepted]], "the lone command went through the short path"
    with pytest.raises(ConcurrentUpdate):
        platform.decline(stale, GULOU_POLICE, "no_record", "")
    assert lone_calls[-1] is None, "the taken key sent the write to the planned path"
    assert platform.check(check_id).status == "accepted"
    _, position = platform.accept(new_check_id(platform), GULOU_POLICE)
    assert position == accepted + 2, "the refused lone write drew no position (raise + accept follow at once)"


def test_the_attachments_of_a_batch_get_each_their_own_writes_positions(platform: Platform) -> None:
    """Every write of a batch is attached its own events' positions (resolved by the server on PostgreSQL),
    in one transaction with a batch-mate refused alone: the planned batch's attachments get theirs too."""
    table = Table(platform)
    table.create()
    checks = [new_check_id(platform) for _ in range(4)]
    stale = platform.check(checks[3])
    platform.accept(checks[3], GULOU_POLICE)  # the stale copy's version is taken
    platform.save_hooks.append(lambda aggregates, events: [Note(str(aggregates[0].id))])
    start = platform.recorder.max_notification_id() or 0
    for queued, commands in (
        ([(platform.accept, checks[0])], [(platform.accept, checks[1]), (platform.decline, checks[2])]),
        ([(platform.withdraw, checks[0])], [(platform.withdraw, checks[1]), (platform.decline, stale)]),
    ):
        group: Any = platform.recorder.group  # type: ignore[attr-defined]
        entered, release = hold_first_batch(platform)
        with ThreadPoolExecutor(max_workers=3) as pool:
            (opener_command, opener_check), = queued
            opener = pool.submit(opener_command, opener_check, *arguments(platform, opener_command))
            assert entered.wait(DEADLINE)
            futures = [pool.submit(command, check, *arguments(platform, command)) for command, check in commands]
            wait_until(lambda: len(group._pending) == 2, "two queued commands")
            release.set()
            outcomes = [future.exception(DEADLINE) or future.result(DEADLINE)[1] for future in [opener, *futures]]
    recorded = positions_of(platform, start)
    expected = sorted(
        (position, str(check_id)) for (check_id, _), position in recorded.items() if check_id in checks
    )
    assert table.rows() == expected and len(expected) == 5, (outcomes, table.rows())
    assert isinstance(outcomes[-1], ConcurrentUpdate)


def arguments(platform: Platform, command: Any) -> tuple[Any, ...]:
    if command == platform.accept:
        return (GULOU_POLICE,)
    if command == platform.decline:
        return (GULOU_POLICE, "no_record", "")
    return (APPROVER, "no longer needed")
