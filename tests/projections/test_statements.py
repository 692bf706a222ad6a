"""What one step of the follower sends to the views' database (issue #14: the follower runs in the request
processes, so every statement of a batch costs CPU that requests wait for): the statements a batch needs
and no more, with the views as they would be otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from projections import follower as follower_module
from projections import medians
from signing.archive import CheckpointArchive
from tests.domain.world import GULOU_POLICE, build_province, raise_check
from tests.projections import recount


class Counting:
    """A cursor that keeps the SQL of every statement it runs."""

    def __init__(self, cursor: Any, seen: list[str]) -> None:
        self.cursor = cursor
        self.seen = seen

    def execute(self, sql: str, params: Any = ()) -> Counting:
        self.seen.append(sql)
        self.cursor.execute(sql, params)
        return self

    def executemany(self, sql: str, rows: Any) -> None:
        self.seen.append(sql)
        self.cursor.executemany(sql, rows)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> Any:
        return self.cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self.cursor.rowcount)


def count_statements(monkeypatch: pytest.MonkeyPatch, database: Any) -> list[str]:
    seen: list[str] = []
    for name in ("reading", "transaction"):
        opened = getattr(database, name)

        @contextmanager
        def counted(opened: Any = opened, name: str = name) -> Iterator[Counting]:
            seen.append(f"-- {name}")
            with opened() as cursor:
                yield Counting(cursor, seen)

        monkeypatch.setattr(database, name, counted)
    return seen


def _mentions(seen: list[str], *words: str) -> list[str]:
    return [sql for sql in seen if all(word in sql for word in words)]


def test_a_batch_moves_every_view_in_one_tracking_statement_and_reads_the_ledger_with_the_positions(
    durable_database_url: str, make_stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follower_module, "COVER_CHECK_SECONDS", 1e9)  # only the first step looks for uncovered leaves
    stack = make_stack(durable_database_url, start=False)
    build_province(stack.app)
    lock = stack.database.leader_lock("views")
    stack.views.follow_once(lock)
    check, _ = raise_check(stack.app)
    stack.app.accept(check.id, GULOU_POLICE)
    seen = count_statements(monkeypatch, stack.database)
    assert stack.views.follower.follow_once(lock, nudged=True) == 2
    assert len(_mentions(seen, "UPDATE view_tracking")) == 1
    # PostgreSQL works the batch out and writes it in one transaction; SQLite reads before it takes the
    # write lock (see `Follower._apply_batch`)
    opened = _mentions(seen, "-- ")
    assert opened == (["-- reading", "-- transaction"] if stack.database.dialect == "sqlite" else ["-- transaction"])
    # the views' positions, the ledger's frontier and its last checkpoint: one statement
    assert len(_mentions(seen, "view_tracking")) == 2  # that read, and the update
    assert len(_mentions(seen, "ledger_state")) == 2  # that read, and the update
    assert _mentions(seen, "ledger_checkpoints") == _mentions(seen, "view_tracking", "ledger_checkpoints")
    monkeypatch.undo()
    assert stack.views.position() == stack.head()
    assert stack.views.ledger_size() == len(recount.notifications(stack.log))
    got, _ = stack.views.list_checks()
    assert [item["status"] for item in got] == ["accepted"]


def test_views_at_different_positions_each_move_once(durable_database_url: str, make_stack) -> None:
    """Views left at different positions (a batch that only some views wanted) all reach the batch's end."""
    stack = make_stack(durable_database_url, start=False)
    build_province(stack.app)
    lock = stack.database.leader_lock("views")
    stack.views.follow_once(lock)
    head = stack.head()
    raise_check(stack.app)
    # the directory view as if it had applied the new event already (another batch's part)
    with stack.database.transaction() as cursor:
        cursor.execute("UPDATE view_tracking SET position = ? WHERE view_name = 'directory'", (head + 1,))
    assert stack.views.follow_once(lock) == 1
    with stack.database.reading() as cursor:
        rows = dict(cursor.execute("SELECT view_name, position FROM view_tracking").fetchall())
    assert set(rows.values()) == {head + 1}
    got, _ = stack.views.list_checks()
    assert len(got) == 1


def test_the_archive_is_read_only_when_a_checkpoint_beyond_it_exists(
    durable_database_url: str, make_stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(follower_module, "COVER_CHECK_SECONDS", 1e9)  # checkpoints by count only
    stack = make_stack(durable_database_url, start=False, checkpoint_every=3)
    archive = stack.views.follower.archive = CheckpointArchive(tmp_path)
    build_province(stack.app)
    lock = stack.database.leader_lock("views")
    stack.views.follow_once(lock)
    latest = stack.views.latest_checkpoint()
    assert latest is not None and archive.read() == latest
    seen = count_statements(monkeypatch, stack.database)
    signed = []
    for _ in range(4):  # one leaf a step: a checkpoint every third
        raise_check(stack.app)
        before = len(_mentions(seen, "ORDER BY tree_size DESC"))
        assert stack.views.follow_once(lock) == 1
        read = len(_mentions(seen, "ORDER BY tree_size DESC")) - before
        previous, latest = latest, stack.views.latest_checkpoint()
        assert latest is not None
        signed.append(latest["tree_size"] > previous["tree_size"])
        assert read == signed[-1]
        assert archive.read() == latest
    assert True in signed and False in signed


def test_a_nudged_step_applies_without_reading_the_head_first(
    durable_database_url: str, make_stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(durable_database_url, start=False)
    build_province(stack.app)
    lock = stack.database.leader_lock("views")
    seen = count_statements(monkeypatch, stack.database)
    applied = stack.views.follower.follow_once(lock, nudged=True)
    assert applied == stack.head() > 0
    assert not _mentions(seen, "AS head")
    assert stack.views.follower.follow_once(lock, nudged=True) == 0  # nothing left: a batch of none
    assert stack.views.follower.follow_once(lock) == 0
    assert len(_mentions(seen, "AS head")) == 1


class Recording:
    def __init__(self) -> None:
        self.sql: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> Recording:
        self.sql.append(sql)
        return self

    def fetchall(self) -> list[Any]:
        return []


def test_the_median_reads_of_a_batch_are_one_statement_text_for_the_same_mix_of_shapes() -> None:
    """The driver parses a statement text once: batches whose plans have the same shapes, in any order
    and with any values, send the same text."""
    one = {
        ("a", ""): medians._plan(("a", ""), 0, None, [(5.0, 1)]),
        ("b", "35"): medians._plan(("b", "35"), 9, (3.0, 2), [(1.0, 3), (2.0, 4), (0.5, 5)]),
        ("", ""): medians._plan(("", ""), 4, (3.0, 2), [(9.0, 6)]),
    }
    two = {
        ("", "3501"): medians._plan(("", "3501"), 6, (7.0, 8), [(1.0, 9), (2.0, 10)]),
        ("c", ""): medians._plan(("c", ""), 5, (2.0, 8), [(8.0, 11), (9.0, 12)]),
        ("d", "35"): medians._plan(("d", "35"), 0, None, [(4.0, 13), (5.0, 14)]),
    }
    texts = []
    for plans in (one, two):
        cursor = Recording()
        medians._run(cursor, plans)
        texts.extend(cursor.sql)
    assert len(texts) == 2 and texts[0] == texts[1]


def test_a_full_statement_of_median_reads_is_short_enough_for_the_driver_to_parse_once() -> None:
    """psycopg parses a statement of more than `MAX_CACHED_STATEMENT_LENGTH` characters for every execution."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    plans = {
        (f"category-{i}", "350100"): medians._plan((f"category-{i}", "350100"), 9, (3.0, 2), [(1.0, 3), (2.0, 4), (0.5, 5)])
        for i in range(3 * medians.QUERIES_PER_STATEMENT)
    }
    cursor = Recording()
    medians._run(cursor, plans)
    assert len(cursor.sql) == 3
    assert max(len(sql.replace("?", "%s")) for sql in cursor.sql) <= MAX_CACHED_STATEMENT_LENGTH
