"""The views' database layer: ``executemany`` of an INSERT goes as multi-row statements on PostgreSQL
(in chunks), with the same result as row by row on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.bootstrap import _open_database
from api.settings import Settings, parse_database_url
from store import database as database_module
from store.database import Database


@pytest.fixture
def database(durable_database_url: str) -> Iterator[Database]:
    db = _open_database(parse_database_url(durable_database_url), Settings(database_url=durable_database_url, db_pool_size=2))
    with db.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, n BIGINT NOT NULL, f DOUBLE PRECISION, b TEXT)")
    yield db
    with db.transaction() as cursor:
        cursor.execute("DROP TABLE t")
    db.close()


UPSERT = "INSERT INTO t (k, n, f, b) VALUES (?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n, b = excluded.b"


def test_executemany_inserts_and_upserts_every_row_across_chunks(database: Database) -> None:
    count = 2 * database_module.ROWS_PER_INSERT + 7  # three statements on PostgreSQL, the last one short
    rows = [(f"k{i:05d}", i, i / 3 if i % 5 else None, "100% 是 ?" if i % 2 else None) for i in range(count)]
    with database.transaction() as cursor:
        cursor.executemany(UPSERT, rows)
        cursor.executemany(UPSERT, [("k00003", 10, None, "again"), ("k00004", 1, None, "x")])
    with database.reading() as cursor:
        stored = cursor.execute("SELECT k, n, f, b FROM t ORDER BY k").fetchall()
    expected = [tuple(row) for row in rows]
    expected[3] = ("k00003", 13, 1.0, "again")
    expected[4] = ("k00004", 5, 4 / 3, "x")
    assert [tuple(row) for row in stored] == expected


def test_a_failing_row_fails_the_whole_transaction(database: Database) -> None:
    with pytest.raises(Exception):
        with database.transaction() as cursor:
            cursor.executemany("INSERT INTO t (k, n, f, b) VALUES (?, ?, ?, ?)", [("a", 1, None, None), ("a", 2, None, None)])
    with database.reading() as cursor:
        assert cursor.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
