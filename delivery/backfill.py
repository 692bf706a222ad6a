"""The feed's index for events recorded before it existed (a store upgraded to a nocert with §11): once
per store, at start-up, the log's check events are indexed as `delivery.routing` indexes new ones. A
marker row says it was done; rows already there are kept (another process may be doing the same)."""

from __future__ import annotations

import logging
from typing import Any

from delivery.routing import FEED
from domain.check import Check
from store.database import Database
from store.eventlog import EventLog

logger = logging.getLogger(__name__)

PAGE = 1000
CHECK_TOPIC = "nocert:check:"
MARKER = "feed-indexed"


def index_feed(database: Database, log: EventLog, mapper: Any) -> int:
    """Indexes every check event of the log in the feed unless that was done; returns how many entries."""
    with database.reading() as cursor:
        if cursor.execute("SELECT 1 FROM delivery_state WHERE name = ?", (MARKER,)).fetchone():
            return 0
    parties: dict[str, tuple[str, str]] = {}  # check -> (approver, issuer addressed now)
    rows: list[tuple[str, int, str, int, str]] = []
    after = 0
    while page := log.read(after, PAGE):
        after = page[-1].id
        for notification in page:
            if not notification.topic.startswith(CHECK_TOPIC):
                continue
            event = mapper.to_domain_event(notification)
            check_id = str(event.originator_id)
            if isinstance(event, Check.Raised):
                parties[check_id] = (event.approver, event.issuer)
            approver, issuer = parties[check_id]
            told = [approver, issuer]
            if isinstance(event, Check.Forwarded):
                parties[check_id] = (approver, event.to)
                told = [approver, event.to, issuer]
            for department in dict.fromkeys(told):
                rows.append((department, notification.id, check_id, event.originator_version, type(event).__name__))
    conflict = " ON CONFLICT DO NOTHING"
    with database.transaction() as cursor:
        if rows:
            cursor.executemany(FEED + conflict, rows)
        cursor.execute("INSERT INTO delivery_state (name) VALUES (?)" + conflict, (MARKER,))
    if rows:
        logger.info("feed: indexed %d entries of events recorded before the feed existed", len(rows))
    return len(rows)
