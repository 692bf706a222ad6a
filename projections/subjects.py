"""The subjects' access log and erasures (API.md §14), over ``view_checks.subject`` (the applicant's blind
index, never the number) and the two record tables ``subject_lookups`` and ``subject_erasures``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from projections.checks import check_limit
from projections.cursor import decode_cursor, encode_cursor


def accesses(cursor: Any, subject: str, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The checks whose applicant is `subject`, newest first (``raised_at`` then ``id`` descending). Department
    names are the caller's to add (``approver.name``, ``issuer.name`` are None here)."""
    limit = check_limit(limit)
    conditions, params = ["c.subject = ?"], [subject]
    if after is not None:
        raised_at, check_id = decode_cursor("accesses", after, width=2)
        conditions.append("(c.raised_at, c.id) < (?, ?)")
        params.extend([raised_at, check_id])
    rows = cursor.execute(
        "SELECT c.raised_at, c.id, c.document, k.name FROM view_checks c LEFT JOIN view_categories k ON k.code = c.category "
        f"WHERE {' AND '.join(conditions)} ORDER BY c.raised_at DESC, c.id DESC LIMIT ?",
        (*params, limit + 1),
    ).fetchall()
    items = [_access(json.loads(document), category_name) for _, _, document, category_name in rows[:limit]]
    next_cursor = encode_cursor("accesses", rows[limit - 1][0], rows[limit - 1][1]) if len(rows) > limit else None
    return items, next_cursor


def _access(document: dict[str, Any], category_name: str | None) -> dict[str, Any]:
    consent = document.get("consent") or {}
    return {
        "check_id": document["id"],
        "raised_at": document["raised_at"],
        "approver": {"id": document["approver"], "name": None},
        "issuer": {"id": document["issuer"], "name": None},
        "category": {"code": document["category"], "name": category_name},
        "matter": document["matter"],
        "purpose": document["purpose"],
        "consent": {"method": consent.get("method")},
        "status": document["status"],
        "outcome": document["outcome"],
        "replied_at": document["replied_at"],
        "closed_at": document["closed_at"],
    }


def check_ids(cursor: Any, subject: str) -> list[str]:
    rows = cursor.execute("SELECT id FROM view_checks WHERE subject = ? ORDER BY raised_at, id", (subject,)).fetchall()
    return [row[0] for row in rows]


def record_lookup(cursor: Any, principal: str, at: str, results: int) -> None:
    """One lookup of the access log: who asked, when, how many checks it found (never the number)."""
    cursor.execute(
        "INSERT INTO subject_lookups (id, at, principal, results) VALUES (?, ?, ?, ?)",
        (str(uuid.uuid4()), at, principal, results),
    )


def lookups(cursor: Any) -> list[dict[str, Any]]:
    rows = cursor.execute("SELECT at, principal, results FROM subject_lookups ORDER BY at, id").fetchall()
    return [{"at": at, "principal": principal, "results": int(results)} for at, principal, results in rows]


def record_erasure(cursor: Any, erasure_id: str, erased_at: str, checks: int, receipt: str) -> None:
    cursor.execute(
        "INSERT INTO subject_erasures (id, erased_at, checks, receipt) VALUES (?, ?, ?, ?)",
        (erasure_id, erased_at, checks, receipt),
    )


def erasures(cursor: Any, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The erasures' receipts, oldest first."""
    limit = check_limit(limit)
    conditions, params = [], []
    if after is not None:
        erased_at, erasure_id = decode_cursor("erasures", after, width=2)
        conditions.append("(erased_at, id) > (?, ?)")
        params.extend([erased_at, erasure_id])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = cursor.execute(
        f"SELECT erased_at, id, checks, receipt FROM subject_erasures {where} ORDER BY erased_at, id LIMIT ?",
        (*params, limit + 1),
    ).fetchall()
    items = [
        {"id": erasure_id, "erased_at": erased_at, "checks": int(count), "receipt": receipt}
        for erased_at, erasure_id, count, receipt in rows[:limit]
    ]
    next_cursor = encode_cursor("erasures", rows[limit - 1][0], rows[limit - 1][1]) if len(rows) > limit else None
    return items, next_cursor
