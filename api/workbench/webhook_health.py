"""Webhook health for the operator (API.md §11): per live subscription its status, how many deliveries wait
(``pending``, held back or due) and how many are stuck (``failing``), the oldest undelivered one (its event's
position and age) and that delivery's last attempt (status code and error).

Read from the delivery store (``webhook_subscriptions``, ``webhook_deliveries``) that the API's
``GET /v1/subscriptions`` and ``GET /v1/subscriptions/{id}/deliveries`` read, so that every figure is the one a
department sees there for its own subscriptions; the age is that of the event (the check at the delivery's
version, `domain.platform.Platform.check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from api.bootstrap import Services
from domain.errors import DomainError


@dataclass(frozen=True)
class Health:
    subscription: str
    department: str
    url: str
    status: str  # active | failing
    pending: int
    failing: int
    delivered: int
    oldest_position: int | None = None  # the oldest delivery not delivered yet
    oldest_age_minutes: int | None = None
    attempts: int | None = None  # of that delivery
    last_status_code: int | None = None
    last_error: str | None = None


def webhook_health(services: Services, now: datetime) -> list[Health]:
    """Every live subscription's health, failing ones first, then by department and id."""
    with services.database.reading() as cursor:
        rows = cursor.execute(
            "SELECT s.id, s.department, s.url, s.status,"
            " SUM(CASE WHEN d.status = 'pending' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN d.status = 'failing' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN d.status = 'delivered' THEN 1 ELSE 0 END),"
            " MIN(CASE WHEN d.status <> 'delivered' THEN d.position END)"
            " FROM webhook_subscriptions s LEFT JOIN webhook_deliveries d ON d.subscription_id = s.id"
            " WHERE s.deleted = 0 GROUP BY s.id, s.department, s.url, s.status"
        ).fetchall()
        heads = {}
        for row in rows:
            if row[7] is not None:
                heads[row[0]] = cursor.execute(
                    "SELECT check_id, version, attempts, last_status_code, last_error FROM webhook_deliveries"
                    " WHERE subscription_id = ? AND position = ?",
                    (row[0], row[7]),
                ).fetchone()
    found = []
    for key, department, url, status, pending, failing, delivered, oldest in rows:
        health = Health(str(key), department, url, status, int(pending or 0), int(failing or 0), int(delivered or 0))
        head = heads.get(key)
        if head is not None:
            check_id, version, attempts, code, error = head
            health = Health(
                **{**health.__dict__, "oldest_position": int(oldest), "attempts": int(attempts),
                   "last_status_code": code, "last_error": error, "oldest_age_minutes": _age(services, check_id, version, now)}
            )
        found.append(health)
    return sorted(found, key=lambda h: (h.status != "failing", h.department, h.subscription))


def _age(services: Services, check_id: object, version: int, now: datetime) -> int | None:
    """Whole minutes since the event of the check at ``version`` was recorded."""
    try:
        event_time: datetime = services.platform.check(UUID(str(check_id)), int(version)).modified_on
    except (DomainError, ValueError):
        return None
    return max(0, int((now - event_time).total_seconds() // 60))
