"""The tables of delivery, in the event store's database (both stores), created before the first save:
the rows are attachments of the commands' saves (`delivery.routing`).

=======================  ==================================================================================
``feed_entries``         one row per (department, event) the department is told of (§11's parties)
``webhook_subscriptions`` one row per subscription (its state; the history is the Subscription's events)
``webhook_deliveries``   the outbox: one row per (subscription, event), pending until delivered
``delivery_state``       markers of one-time work (`delivery.backfill`)
=======================  ==================================================================================
"""

from __future__ import annotations

from store.database import Database


def statements(dialect: str) -> list[str]:
    key = 'TEXT COLLATE "C"' if dialect == "postgres" else "TEXT"
    return [
        f"""CREATE TABLE IF NOT EXISTS feed_entries (
    department {key} NOT NULL,
    position BIGINT NOT NULL,
    check_id {key} NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (department, position)
)""",
        f"""CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id {key} PRIMARY KEY,
    department {key} NOT NULL,
    url TEXT NOT NULL,
    types TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    secret TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
)""",
        "CREATE INDEX IF NOT EXISTS webhook_subscriptions_by_department ON webhook_subscriptions (department, id)",
        f"""CREATE TABLE IF NOT EXISTS webhook_deliveries (
    subscription_id {key} NOT NULL,
    position BIGINT NOT NULL,
    department {key} NOT NULL,
    check_id {key} NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    streak INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error TEXT,
    next_attempt_at DOUBLE PRECISION,
    delivered_at TEXT,
    PRIMARY KEY (subscription_id, position)
)""",
        "CREATE TABLE IF NOT EXISTS delivery_state (name TEXT PRIMARY KEY)",
        # The due heads' walk (`delivery.outbox.due_heads`): a subscription's pending rows in position order,
        # and for each whether an earlier one of its check is undelivered. Partial: delivered rows (all but a
        # few) are in neither. They replace (status, next_attempt_at) and (subscription_id, check_id, position).
        "CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (subscription_id, position)"
        " WHERE status = 'pending'",
        "CREATE INDEX IF NOT EXISTS webhook_deliveries_undelivered ON webhook_deliveries (subscription_id, check_id, position)"
        " WHERE status <> 'delivered'",
        "DROP INDEX IF EXISTS webhook_deliveries_due",
        "DROP INDEX IF EXISTS webhook_deliveries_by_check",
    ]


def create_tables(database: Database) -> None:
    with database.transaction() as cursor:
        for statement in statements(database.dialect):
            cursor.execute(statement)
