"""The webhook outbox (API.md §11): one row per (subscription, event), pending until a 2xx.

Subscriptions' rows follow their events in the same transaction (`SubscriptionRows`, an attachment of the
save). The dispatcher asks for the *heads* that are due: per subscription and check, the earliest pending
delivery (so an event waits for every earlier event of its check), in position order."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.subscription import Subscription
from domain.timefmt import format_time
from store.database import Database

UPSERT = (
    "INSERT INTO webhook_subscriptions (id, department, url, types, status, created_at, secret, deleted)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, deleted = excluded.deleted"
)


def types_column(types: list[str] | None) -> str | None:
    """``,Replied,Closed,``: matched with LIKE by the outbox insert of `delivery.routing`."""
    return None if types is None else "," + ",".join(types) + ","


@dataclass(frozen=True)
class SubscriptionRows:
    """The attachment of a subscription's save: its row, and what its events do to its deliveries."""

    subscription: Subscription
    events: tuple[Any, ...]

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        s = self.subscription
        cursor.execute(
            UPSERT,
            (str(s.id), s.department, s.url, types_column(s.types), s.status, format_time(s.created_on), s.sealed_secret, int(s.deleted)),
        )
        for event in self.events:
            if isinstance(event, Subscription.BecameFailing):
                cursor.execute(
                    "UPDATE webhook_deliveries SET status = 'failing', next_attempt_at = NULL"
                    " WHERE subscription_id = ? AND position = ? AND status = 'pending'",
                    (str(s.id), event.position),
                )
            elif isinstance(event, Subscription.Resumed):
                cursor.execute(
                    "UPDATE webhook_deliveries SET status = 'pending', streak = 0, next_attempt_at = ?"
                    " WHERE subscription_id = ? AND status = 'failing'",
                    (time.time(), str(s.id)),
                )


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now."""

    subscription_id: str
    department: str
    url: str
    secret: str  # sealed
    position: int
    check_id: str
    version: int
    attempts: int
    streak: int


# A subscription's due heads, oldest first: its pending rows walked in position order (the partial index
# ``webhook_deliveries_pending``), each kept when no earlier row of its check is undelivered, until `limit` are
# found: the walk reads about as many rows as it answers, however long the outbox (a window over every
# pending row of every subscription read them all, every round).
HEADS_OF = (
    "SELECT d.position, d.check_id, d.version, d.attempts, d.streak FROM webhook_deliveries d"
    " WHERE d.subscription_id = {subscription} AND d.status = 'pending' AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)"
    " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id"
    "  AND e.check_id = d.check_id AND e.position < d.position AND e.status <> 'delivered')"
    " ORDER BY d.position LIMIT ?"
)
LIVE = "s.status = 'active' AND s.deleted = 0"
DUE_HEADS = {  # PostgreSQL walks each subscription in one statement; SQLite (no LATERAL, no round trip) one each
    "postgres": "SELECT s.id, s.department, s.url, s.secret, h.* FROM webhook_subscriptions s"
    f" CROSS JOIN LATERAL ({HEADS_OF.format(subscription='s.id')}) h WHERE {LIVE} ORDER BY h.position",
    "sqlite": f"SELECT s.id, s.department, s.url, s.secret FROM webhook_subscriptions s WHERE {LIVE}"
    " AND EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.subscription_id = s.id AND p.status = 'pending')",
}


def due_heads(database: Database, now: float, per_subscription: int) -> list[Due]:
    """Every active subscription's due deliveries that are the earliest undelivered of their check (so no two
    of one check), at most `per_subscription` of each, oldest first: one read for a dispatcher's round."""
    with database.reading() as cursor:
        if database.dialect == "postgres":
            rows = cursor.execute(DUE_HEADS["postgres"], (now, per_subscription)).fetchall()
        else:
            heads_of = HEADS_OF.format(subscription="?")
            rows = [
                (*subscription, *row)
                for subscription in cursor.execute(DUE_HEADS["sqlite"]).fetchall()
                for row in cursor.execute(heads_of, (subscription[0], now, per_subscription)).fetchall()
            ]
            rows.sort(key=lambda row: row[4])
    return [Due(*row) for row in rows]


# The finished deliveries of a round as a table (subscription, position, status code, delivered at), from
# one JSON parameter: one statement with one parameter however many there are (placeholders by the hundred
# would cost the driver more to parse than the rows cost the database).
DONE_ROWS = {
    "sqlite": "SELECT json_extract(value, '$[0]') AS sub, json_extract(value, '$[1]') AS pos,"
    " json_extract(value, '$[2]') AS code, json_extract(value, '$[3]') AS at FROM json_each(?)",
    "postgres": "SELECT e ->> 0 AS sub, (e ->> 1)::bigint AS pos, (e ->> 2)::integer AS code, e ->> 3 AS at"
    " FROM json_array_elements(?::json) AS e",
}


def delivered(database: Database, done: Sequence[tuple[Due, int, str]]) -> None:
    """Marks deliveries delivered: (delivery, status code, delivered at), in one transaction of one statement:
    a round records all it learnt at once, not a statement per delivery."""
    if not done:
        return
    rows = json.dumps([[due.subscription_id, due.position, status, at] for due, status, at in done])
    with database.transaction() as cursor:
        cursor.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, streak = 0,"
            " last_status_code = v.code, last_error = NULL, next_attempt_at = NULL, delivered_at = v.at"
            f" FROM ({DONE_ROWS[database.dialect]}) AS v"
            " WHERE webhook_deliveries.subscription_id = v.sub AND webhook_deliveries.position = v.pos"
            " AND webhook_deliveries.status = 'pending'",
            (rows,),
        )


def retry_later(database: Database, due: Due, status_code: int | None, error: str, at: float | None) -> None:
    """Counts the failed attempt; `at` None: no retry left (the subscription becomes failing next)."""
    with database.transaction() as cursor:
        cursor.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, streak = streak + 1, last_status_code = ?,"
            " last_error = ?, next_attempt_at = ? WHERE subscription_id = ? AND position = ? AND status = 'pending'",
            (status_code, error[:500], at, due.subscription_id, due.position),
        )


def backlog(database: Database) -> int:
    """Pending deliveries of live subscriptions (the /metrics gauge)."""
    with database.reading() as cursor:
        row = cursor.execute(
            "SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id"
            " WHERE d.status <> 'delivered' AND s.deleted = 0"
        ).fetchone()
    return int(row[0]) if row else 0


def list_deliveries(
    database: Database, subscription_id: str, status: str | None, limit: int, after: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    conditions: list[str] = ["subscription_id = ?"]
    params: list[Any] = [subscription_id]
    if status is not None:
        conditions.append("status = ?")
        params.append(status)
    if after is not None:
        conditions.append("position > ?")
        params.append(after)
    with database.reading() as cursor:
        rows = cursor.execute(
            "SELECT position, attempts, status, last_status_code, last_error, next_attempt_at, delivered_at"
            f" FROM webhook_deliveries WHERE {' AND '.join(conditions)} ORDER BY position LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
    items = [
        {
            "event_id": str(position),
            "position": int(position),
            "attempts": int(attempts),
            "status": state,
            "last_status_code": code,
            "last_error": error,
            "next_attempt_at": format_time(_from_unix(at)) if at is not None and state == "pending" else None,
            "delivered_at": delivered_at,
        }
        for position, attempts, state, code, error, at, delivered_at in rows[:limit]
    ]
    return items, (int(rows[limit - 1][0]) if len(rows) > limit else None)


def _from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def subscription_rows(subscription: Subscription, events: Sequence[Any]) -> SubscriptionRows:
    return SubscriptionRows(subscription, tuple(events))


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def list_subscriptions(database: Database, department: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The department's live subscriptions by id (no secret)."""
    conditions, params = "department = ? AND deleted = 0", [department]
    if after is not None:
        conditions += " AND id > ?"
        params.append(after)
    with database.reading() as cursor:
        rows = cursor.execute(
            f"SELECT id, url, types, status, created_at FROM webhook_subscriptions WHERE {conditions} ORDER BY id LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
    items = [
        {"id": key, "url": url, "types": types.strip(",").split(",") if types else None, "status": status, "created_at": created_at}
        for key, url, types, status, created_at in rows[:limit]
    ]
    return items, (rows[limit - 1][0] if len(rows) > limit else None)
