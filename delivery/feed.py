"""The feed's index (API.md §11 ``GET /v1/feed``): a department's events in position order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store.database import Database

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Entry:
    """One event a department is told of: where it is, and which check version it made."""

    position: int
    check_id: str
    version: int
    type: str


def entries(database: Database, department: str, after: int, limit: int) -> list[Entry]:
    """The department's entries with position > `after`, at most `limit`, in position order."""
    with database.reading() as cursor:
        rows: list[Any] = cursor.execute(
            "SELECT position, check_id, version, type FROM feed_entries WHERE department = ? AND position > ?"
            " ORDER BY position LIMIT ?",
            (department, after, limit),
        ).fetchall()
    return [Entry(int(position), check_id, int(version), kind) for position, check_id, version, kind in rows]
