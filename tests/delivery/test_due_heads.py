"""The due heads of a round (`delivery.outbox.due_heads`), on both stores: a walk of each subscription's
pending rows that stops at the round's limit answers exactly what a window over every pending row answered
(per subscription and check the earliest undelivered row, if it is pending and due; at most `limit` of each
subscription, oldest first; no failing, paused or deleted subscription), and on SQLite it walks the partial
index of pending rows instead of the whole table."""

from __future__ import annotations

import time

import pytest

from delivery import outbox
from store.database import Database
from tests.api.conftest import Province

WINDOW = (  # the statement it replaces, as the reference
    "SELECT id, department, url, secret, position, check_id, version, attempts, streak FROM ("
    " SELECT s.id, s.department, s.url, s.secret, d.position, d.check_id, d.version, d.attempts, d.streak,"
    "  ROW_NUMBER() OVER (PARTITION BY d.subscription_id ORDER BY d.position) AS place"
    " FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id"
    " WHERE d.status = 'pending' AND s.status = 'active' AND s.deleted = 0"
    " AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)"
    " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id"
    "   AND e.check_id = d.check_id AND e.position < d.position AND e.status <> 'delivered')"
    ") heads WHERE place <= ? ORDER BY position"
)


def fill(database: Database, now: float) -> None:
    subscriptions = [("a", "active", 0), ("b", "active", 0), ("c", "failing", 0), ("d", "active", 1)]
    rows = []
    position = 0
    for check in range(40):
        for version in range(1, 5):
            position += 1
            for subscription, _, _ in subscriptions:
                kind = (check * 7 + version * 3 + ord(subscription)) % 6
                status = ("delivered", "delivered", "pending", "pending", "failing", "pending")[kind]
                at = now + 60 if kind == 3 else (now - 1 if kind == 5 else None)
                rows.append((subscription, position, f"dep-{subscription}", f"check-{check:02d}", version, status, at))
    with database.transaction() as cursor:
        for subscription, status, deleted in subscriptions:
            cursor.execute(
                "INSERT INTO webhook_subscriptions (id, department, url, types, status, created_at, secret, deleted)"
                " VALUES (?, ?, 'http://127.0.0.1/', NULL, ?, 't', 'sealed', ?)",
                (subscription, f"dep-{subscription}", status, deleted),
            )
        for row in rows:
            cursor.execute(
                "INSERT INTO webhook_deliveries (subscription_id, position, department, check_id, version, status, attempts, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                row,
            )


def test_the_walk_answers_what_the_window_answered(province: Province) -> None:
    database = province.services.database
    now = time.time()
    fill(database, now)
    for limit in (1, 3, 50):
        with database.reading() as cursor:
            expected = [outbox.Due(*row) for row in cursor.execute(WINDOW, (now, limit)).fetchall()]
        assert outbox.due_heads(database, now, limit) == expected
        assert {due.subscription_id for due in expected} == {"a", "b"}
    assert len(outbox.due_heads(database, now, 3)) == 6


@pytest.mark.parametrize("durable_database_url", ["sqlite"], indirect=True)
def test_sqlite_walks_the_pending_rows_only(province: Province) -> None:
    """SQLite only: PostgreSQL's plan depends on its statistics (its EXPLAIN ANALYZE is in BENCHMARKS.md)."""
    database = province.services.database
    assert database.dialect == "sqlite"
    heads_of = outbox.HEADS_OF.format(subscription="?")
    with database.reading() as cursor:
        plan = " ".join(str(row[-1]) for row in cursor.execute(f"EXPLAIN QUERY PLAN {heads_of}", ("a", 0.0, 50)).fetchall())
    assert "webhook_deliveries_pending" in plan and "webhook_deliveries_undelivered" in plan
