"""Group commit: the writes of concurrent threads, committed together in one transaction.

Every command's events go to the event store under one table lock (the lock keeps positions in commit
order). Taken one command at a time, that lock is what limits a process; taken once for all the commands
that arrived meanwhile, its cost is shared. `GroupCommit` is the classic combining scheme: the first thread
to submit while no batch is being written becomes the leader and writes at once (no added latency when the
process is quiet); threads that submit while a batch is being written queue up, and the next leader writes
all of them as the next batch. A batch fails as a whole only when its transaction fails (the database is
unreachable, say); a write that is refused on its own merits (an optimistic-concurrency conflict) is refused
alone, and its batch-mates commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

W = TypeVar("W")
R = TypeVar("R")

#: The most writes one transaction takes: a bound on the transaction's size and on a leader's work.
MAX_BATCH = 100


class _Slot(Generic[W, R]):
    __slots__ = ("write", "wake", "lead", "written", "result", "error")

    def __init__(self, write: W) -> None:
        self.write = write
        self.wake = threading.Event()  # set once the write is settled, or when this thread is to lead
        self.lead = False
        self.written = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[W, R]):
    """Commits the writes of concurrent callers in batches.

    ``commit(writes)`` writes one batch in one transaction and returns, for each write in order, its
    result or the exception refusing that write alone; if it raises, every write of the batch fails with
    that exception. `submit` blocks until its write is committed or refused.
    """

    def __init__(
        self, commit: Callable[[Sequence[W]], Sequence[R | BaseException]], *, max_batch: int = MAX_BATCH
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit = commit
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot[W, R]] = []
        self._writing = False
        #: Batches written and writes in them, since start (for metrics and benchmarks).
        self.batches = 0
        self.writes = 0

    def submit(self, write: W) -> R:
        """Commits ``write`` with whatever else is waiting; returns its result or raises its error."""
        slot: _Slot[W, R] = _Slot(write)
        with self._lock:
            self._pending.append(slot)
            lead = not self._writing
            self._writing = True
        if not lead:
            slot.wake.wait()
            lead = slot.lead
        if lead:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # None only where R admits it

    def _lead(self, own: _Slot[W, R]) -> None:
        """Writes batches until ``own`` is settled, then hands the lead to the oldest waiting write (or
        ends the writing when none waits). The lead is handed on even when a batch raised."""
        try:
            while not own.written:
                with self._lock:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                self._write(batch)
        finally:
            with self._lock:
                if self._pending:
                    successor = self._pending[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._writing = False

    def _write(self, batch: list[_Slot[W, R]]) -> None:
        self.batches += 1
        self.writes += len(batch)
        try:
            results = self._commit([slot.write for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} writes gave {len(results)} results")
        except BaseException as error:  # the whole batch failed: each of its writers gets the error
            for slot in batch:
                self._settle(slot, None, error)
            if not isinstance(error, Exception):
                raise
            return
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                self._settle(slot, None, result)
            else:
                self._settle(slot, result, None)

    @staticmethod
    def _settle(slot: _Slot[W, R], result: R | None, error: BaseException | None) -> None:
        slot.result, slot.error, slot.written, slot.lead = result, error, True, False
        slot.wake.set()
