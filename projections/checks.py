"""The checks view: one row per check, for the lists and the inbox (API.md §4).

A row holds the columns lists filter and sort on, and the check's document as every list reader may
see it: `check_document` with identity numbers masked and ``proof.jws`` null. ``overdue`` depends on
the time of reading, so it is not stored: it is set when a row is read.

Rows are derived from the domain's own ``Check`` aggregate (the projector applies each event with the
aggregate's own ``mutate``), so no rule of the check is restated here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from domain.check import Check
from domain.check_rules import OPEN_UNANSWERED, STATUSES
from domain.errors import InvalidInput
from domain.ports import PersonalData
from domain.privacy import mask_check
from domain.timefmt import format_time
from projections.cursor import decode_cursor, encode_cursor
from signing import strictjson

MAX_LIMIT = 500

COLUMNS = (
    "id",
    "approver",
    "issuer",
    "status",
    "category",
    "approver_region",
    "raised_at",
    "due_at",
    "answered_at",
    "answer_seconds",
    "on_time",
    "answer",
    "outcome",
    "inbox_issuer",
    "overdue_for",
    "position",
    "subject",
    "document",
)
# The document's personal fields, sealed under the check's subject key in the view (API.md §14).
SEALED_FIELDS = ("applicant", "claims")

UPSERT = (
    f"INSERT INTO view_checks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS if c != 'id')}"
)


def answer_of(check: Check) -> str | None:
    """The check's one answer: the reply's conclusion, ``declined``, or None before any."""
    if check.proof is not None:
        return check.proof.conclusion
    if check.declined is not None:
        return "declined"
    return None


def check_document(check: Check, now: datetime) -> dict[str, Any]:
    """The check as the contract shows it (API.md §4), unmasked: callers mask it for the reader
    (`api.presenters`), the view for every list reader (`list_document`)."""
    proof = check.proof
    return {
        "id": str(check.id),
        "status": check.status,
        "category": check.category,
        "matter": check.matter,
        "approver": check.approver,
        "issuer": check.issuer,
        "applicant": check.applicant,
        "claims": check.claims,
        "purpose": check.purpose,
        "consent": check.consent,
        "raised_at": format_time(check.created_on),
        "due_at": format_time(check.due_at),
        "overdue": check.is_overdue(now),
        "replied_at": format_time(check.replied_at) if check.replied_at else None,
        "closed_at": format_time(check.closed_at) if check.closed_at else None,
        "outcome": check.outcome,
        "proof": None
        if proof is None
        else {
            "id": str(proof.id),
            "jws": proof.jws,
            "kid": proof.kid,
            "conclusion": proof.conclusion,
            "status": proof.status,
        },
        "decline": check.declined,
        "info_requests": [
            {
                "question": item["question"],
                "answer": item["answer"],
                "asked_at": format_time(item["asked_at"]),
                "answered_at": format_time(item["answered_at"]) if item["answered_at"] else None,
            }
            for item in check.info_requests
        ],
        "forwarded_from": list(check.forwarded_from),
        "version": check.version,
        "overdue_since": format_time(check.overdue_since) if check.overdue_since else None,
        "urged": check.urged,
    }


def list_document(check: Check) -> dict[str, Any]:
    """The check as lists show it to every reader: masked, without the proof's JWS, without ``overdue``."""
    document = mask_check(check_document(check, check.created_on))
    if document["proof"] is not None:
        document["proof"] = {**document["proof"], "jws": None}
    del document["overdue"]
    return document


def answer_facts(check: Check) -> dict[str, Any]:
    """The row's columns about the check's state and answer (what coverage counts); ``answered_at`` as
    a datetime (`check_row` writes it as text)."""
    answered_at = check.replied_at
    return {
        "status": check.status,
        "answered_at": answered_at,
        "answer_seconds": (answered_at - check.created_on).total_seconds() if answered_at else None,
        "on_time": (1 if answered_at <= check.due_at else 0) if answered_at else None,
        "answer": answer_of(check),
        "outcome": check.outcome,
    }


def stored_document(check: Check, personal: PersonalData) -> dict[str, Any]:
    """`list_document` as the view stores it: its personal fields sealed under the subject key (an erased
    check's are null already)."""
    document = list_document(check)
    if check.erased_at is not None:
        return document
    for field in SEALED_FIELDS:
        document[field] = personal.seal_field(check.id, field, document[field])
    return document


def check_row(check: Check, approver_region: str, position: int, personal: PersonalData) -> dict[str, Any]:
    """The view's row of a check, from the aggregate. ``position``: the check's last event."""
    facts = answer_facts(check)
    if facts["answered_at"] is not None:
        facts["answered_at"] = format_time(facts["answered_at"])
    return {
        "id": str(check.id),
        "approver": check.approver,
        "issuer": check.issuer,
        "category": check.category,
        "approver_region": approver_region,
        "raised_at": format_time(check.created_on),
        "due_at": format_time(check.due_at),
        **facts,
        "inbox_issuer": check.issuer if check.status in OPEN_UNANSWERED else None,
        "overdue_for": format_time(check.overdue_for) if check.overdue_for else None,
        "position": position,
        "subject": personal.subject_of(check.applicant.get("id_number")),
        "document": json.dumps(stored_document(check, personal), ensure_ascii=False, separators=(",", ":")),
    }


def row_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column] for column in COLUMNS)


def read_document(document: str, now: datetime, personal: PersonalData) -> dict[str, Any]:
    """A stored document as the reader gets it: its personal fields opened, ``overdue`` computed for ``now``."""
    item: dict[str, Any] = json.loads(document)
    for field in SEALED_FIELDS:
        # Data stored deeper than any reader follows (before the nesting limit) is cut, not a failed read.
        item[field] = strictjson.bounded(personal.open_field(item["id"], field, item[field]), strictjson.MAX_JSON_DEPTH - 1)
    item["overdue"] = item["status"] in OPEN_UNANSWERED and format_time(now) > item["due_at"]
    return item


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


# -- queries ----------------------------------------------------------------------------------


def list_checks(
    cursor: Any,
    now: datetime,
    personal: PersonalData,
    *,
    approver: str | None,
    issuer: str | None,
    party: str | None,
    status: str | None,
    category: str | None,
    overdue: bool | None,
    limit: int,
    after: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first: ``raised_at`` descending, then ``id`` descending. ``party``: the check's approver or
    its current issuer (a department with both roles)."""
    limit = check_limit(limit)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}")
    if category is not None and not cursor.execute(
        "SELECT 1 FROM view_categories WHERE code = ?", (category,)
    ).fetchone():
        raise InvalidInput(f"unknown category {category!r}")
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (("approver", approver), ("issuer", issuer), ("status", status), ("category", category)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    if party is not None:
        conditions.append("(approver = ? OR issuer = ?)")
        params.extend([party, party])
    if overdue is not None:
        open_statuses = ", ".join("?" for _ in OPEN_UNANSWERED)
        clause = f"status IN ({open_statuses}) AND due_at < ?"
        conditions.append(clause if overdue else f"NOT ({clause})")
        params.extend([*sorted(OPEN_UNANSWERED), format_time(now)])
    if after is not None:
        raised_at, check_id = decode_cursor("checks", after, width=2)
        conditions.append("(raised_at, id) < (?, ?)")  # a row value: the index's range bound
        params.extend([raised_at, check_id])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = cursor.execute(
        f"SELECT raised_at, id, document FROM view_checks {where} ORDER BY raised_at DESC, id DESC LIMIT ?",
        (*params, limit + 1),
    ).fetchall()
    items = [read_document(document, now, personal) for _, _, document in rows[:limit]]
    next_cursor = encode_cursor("checks", rows[limit - 1][0], rows[limit - 1][1]) if len(rows) > limit else None
    return items, next_cursor


def inbox(
    cursor: Any, now: datetime, personal: PersonalData, issuer: str, *, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Checks addressed to ``issuer`` in ``raised``, ``accepted`` or ``info_requested``: most urgent
    ``due_at`` first, then ``id``."""
    limit = check_limit(limit)
    conditions = ["inbox_issuer = ?"]
    params: list[Any] = [issuer]
    if after is not None:
        due_at, check_id = decode_cursor("inbox", after, width=2)
        conditions.append("(due_at, id) > (?, ?)")
        params.extend([due_at, check_id])
    rows = cursor.execute(
        f"SELECT due_at, id, document FROM view_checks WHERE {' AND '.join(conditions)} "
        "ORDER BY due_at, id LIMIT ?",
        (*params, limit + 1),
    ).fetchall()
    items = [read_document(document, now, personal) for _, _, document in rows[:limit]]
    next_cursor = encode_cursor("inbox", rows[limit - 1][0], rows[limit - 1][1]) if len(rows) > limit else None
    return items, next_cursor


def overdue_pending(cursor: Any, now: datetime, limit: int) -> list[str]:
    """Ids of unanswered checks past their due time with no ``Overdue`` for it yet (API.md §13), longest
    overdue first: what the platform's timer records ``Overdue`` on."""
    open_statuses = ", ".join("?" for _ in OPEN_UNANSWERED)
    rows = cursor.execute(
        f"SELECT id FROM view_checks WHERE status IN ({open_statuses}) AND due_at < ? "
        "AND (overdue_for IS NULL OR overdue_for <> due_at) ORDER BY due_at LIMIT ?",
        (*sorted(OPEN_UNANSWERED), format_time(now), limit),
    ).fetchall()
    return [row[0] for row in rows]


def oldest_unanswered(cursor: Any) -> dict[str, str]:
    """Per issuer, when the oldest check still waiting for its answer (in its inbox) was raised."""
    rows = cursor.execute(
        "SELECT inbox_issuer, MIN(raised_at) FROM view_checks WHERE inbox_issuer IS NOT NULL GROUP BY inbox_issuer"
    ).fetchall()
    return {issuer: raised_at for issuer, raised_at in rows}
