"""The audit's read-ahead thread gives the log's pages in order up to the audit's stop, passes a read error
on to the audit, and ends when the audit stops early."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import pytest

from projections.audit import READ_AHEAD, _ReadAhead, _view_leaves


@dataclass
class Row:
    id: int


class FakeLog:
    def __init__(self, positions: list[int], fail_after: int | None = None) -> None:
        self.positions = positions
        self.fail_after = fail_after
        self.reads: list[tuple[int, int, int | None]] = []

    def read(self, after: int, limit: int, stop: int | None = None) -> list[Row]:
        self.reads.append((after, limit, stop))
        if self.fail_after is not None and after >= self.fail_after:
            raise RuntimeError("the database went away")
        return [Row(p) for p in self.positions if p > after and (stop is None or p <= stop)][:limit]


def test_pages_in_order_up_to_stop() -> None:
    log = FakeLog([1, 2, 3, 5, 8, 9, 10, 11, 12])
    with _ReadAhead(log, 10, 3) as pages:  # type: ignore[arg-type]
        got = [[row.id for row in page] for page in pages]
    assert got == [[1, 2, 3], [5, 8, 9], [10]]
    assert all(stop == 10 for _, _, stop in log.reads)


def test_an_empty_log() -> None:
    with _ReadAhead(FakeLog([]), 0, 3) as pages:  # type: ignore[arg-type]
        assert list(pages) == []


def test_a_read_error_reaches_the_audit() -> None:
    log = FakeLog(list(range(1, 20)), fail_after=6)
    seen = []
    with pytest.raises(RuntimeError, match="went away"):
        with _ReadAhead(log, 19, 3) as pages:  # type: ignore[arg-type]
            for page in pages:
                seen.extend(row.id for row in page)
    assert seen == [1, 2, 3, 4, 5, 6]


def test_stopping_early_ends_the_thread() -> None:
    log = FakeLog(list(range(1, 10_000)))
    before = threading.active_count()
    with _ReadAhead(log, 9_999, 10) as pages:  # type: ignore[arg-type]
        first = next(iter(pages))
    assert [row.id for row in first] == list(range(1, 11))
    assert threading.active_count() == before
    assert len(log.reads) <= READ_AHEAD + 3  # it read ahead a little, not the whole log


class FakeLeaves:
    """`Database.reading()` over ledger_leaves rows (idx, position, ...), answering the audit's page query."""

    def __init__(self, positions: list[int]) -> None:
        self.rows = [(i, p, "s", 1, "t", "h", b"d") for i, p in enumerate(positions)]
        self.queries: list[tuple] = []

    @contextlib.contextmanager
    def reading(self):
        yield self

    def execute(self, sql: str, params: tuple) -> FakeLeaves:
        self.queries.append(params)
        after, limit = params
        self._result = [row for row in self.rows if row[1] > after][:limit]
        return self

    def fetchall(self) -> list[tuple]:
        return self._result


@pytest.mark.parametrize("stop", [0, 1, 3, 4, 6, 7, 9, 10, 12, 100])
@pytest.mark.parametrize("page_size", [1, 2, 3, 5])
def test_view_leaves_up_to_stop(stop: int, page_size: int) -> None:
    positions = [1, 2, 4, 5, 6, 9, 10, 11, 12]
    leaves = FakeLeaves(positions)
    got = [row[1] for row in _view_leaves(leaves, stop, page_size)]  # type: ignore[arg-type]
    assert got == [p for p in positions if p <= stop]
