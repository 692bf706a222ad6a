"""The audit reads the ledger view's leaves up to its stop with a query bounded below only (a plan that
stays an index scan without statistics), dropping what lies past the stop."""

from __future__ import annotations

import contextlib

import pytest

from audit.ledger_scan import _view_leaves


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
