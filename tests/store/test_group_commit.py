"""Group commit: concurrent writes share transactions, each gets its own outcome, nothing waits forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from store.group_commit import GroupCommit

DEADLINE = 10.0


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class Recorder:
    """A commit function that records its batches and can be held while writers queue up."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.refuse: set[int] = set()
        self.fail_batches_with: set[int] = set()

    def __call__(self, writes: Sequence[int]) -> list[int | BaseException]:
        self.entered.set()
        assert self.release.wait(DEADLINE)
        self.batches.append(list(writes))
        if any(write in self.fail_batches_with for write in writes):
            raise ConnectionError("the database went away")
        return [ValueError(f"refused {w}") if w in self.refuse else w * 10 for w in writes]


def test_a_lone_write_is_committed_at_once_as_its_own_batch() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder)
    assert commit.submit(1) == 10
    assert recorder.batches == [[1]]
    assert (commit.batches, commit.writes) == (1, 1)


def test_writes_arriving_during_a_batch_are_committed_together_in_the_next() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder)
    with ThreadPoolExecutor(max_workers=11) as pool:
        first = pool.submit(commit.submit, 0)
        assert recorder.entered.wait(DEADLINE)
        rest = [pool.submit(commit.submit, n) for n in range(1, 11)]
        wait_until(lambda: len(commit._pending) == 10, "ten queued writes")
        recorder.release.set()
        assert first.result(DEADLINE) == 0
        assert [future.result(DEADLINE) for future in rest] == [n * 10 for n in range(1, 11)]
    assert recorder.batches[0] == [0]
    assert sorted(recorder.batches[1]) == list(range(1, 11))
    assert len(recorder.batches) == 2


def test_a_refused_write_fails_alone_and_its_batch_mates_commit() -> None:
    recorder = Recorder()
    recorder.release.clear()
    recorder.refuse = {3}
    commit = GroupCommit(recorder)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(commit.submit, 0)
        assert recorder.entered.wait(DEADLINE)
        rest = {n: pool.submit(commit.submit, n) for n in range(1, 6)}
        wait_until(lambda: len(commit._pending) == 5, "five queued writes")
        recorder.release.set()
        first.result(DEADLINE)
        with pytest.raises(ValueError, match="refused 3"):
            rest[3].result(DEADLINE)
        assert {n: f.result(DEADLINE) for n, f in rest.items() if n != 3} == {1: 10, 2: 20, 4: 40, 5: 50}
    assert len(recorder.batches) == 2


def test_a_failed_transaction_fails_every_write_of_its_batch_and_later_writes_still_commit() -> None:
    recorder = Recorder()
    recorder.release.clear()
    recorder.fail_batches_with = {2}
    commit = GroupCommit(recorder)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(commit.submit, 0)
        assert recorder.entered.wait(DEADLINE)
        rest = [pool.submit(commit.submit, n) for n in (1, 2, 3)]
        wait_until(lambda: len(commit._pending) == 3, "three queued writes")
        recorder.release.set()
        assert first.result(DEADLINE) == 0
        for future in rest:
            with pytest.raises(ConnectionError):
                future.result(DEADLINE)
    assert commit.submit(7) == 70  # the lead was handed on: nothing is stuck


def test_batches_are_bounded_and_every_write_of_a_long_queue_is_committed_once() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder, max_batch=4)
    with ThreadPoolExecutor(max_workers=21) as pool:
        first = pool.submit(commit.submit, 0)
        assert recorder.entered.wait(DEADLINE)
        rest = [pool.submit(commit.submit, n) for n in range(1, 21)]
        wait_until(lambda: len(commit._pending) == 20, "twenty queued writes")
        recorder.release.set()
        assert [f.result(DEADLINE) for f in [first, *rest]] == [n * 10 for n in range(21)]
    assert all(len(batch) <= 4 for batch in recorder.batches)
    assert sorted(w for batch in recorder.batches for w in batch) == list(range(21))


def test_many_threads_hammering_get_exactly_their_own_results() -> None:
    commit: GroupCommit[tuple[int, int], tuple[int, int]] = GroupCommit(lambda writes: list(writes))
    def work(thread: int) -> list[tuple[int, int]]:
        return [commit.submit((thread, n)) for n in range(200)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(16)))
    assert results == [[(t, n) for n in range(200)] for t in range(16)]
    assert commit.writes == 16 * 200


def test_a_commit_that_returns_the_wrong_number_of_results_fails_its_writers() -> None:
    commit: GroupCommit[int, int] = GroupCommit(lambda writes: [])
    with pytest.raises(RuntimeError, match="gave 0 results"):
        commit.submit(1)
    with pytest.raises(ValueError):
        GroupCommit(lambda writes: list(writes), max_batch=0)
