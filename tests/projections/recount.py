"""Brute-force recounts of every view, straight from the event store and the aggregates.

Written independently of projections/: the rules are restated here from API.md (§4 lists, §6
coverage, §7 ledger), so that a view agreeing with them means something.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
from datetime import datetime
from typing import Any
from uuid import UUID

import rfc8785

from domain.check import Check
from domain.identifiers import region_prefix
from domain.platform import Platform
from domain.privacy import mask_check
from projections.checks import check_document
from store.database import Database
from store.eventlog import EventLog

OPEN_UNANSWERED = {"raised", "accepted", "info_requested"}


def notifications(log: EventLog) -> list[Any]:
    found: list[Any] = []
    after = 0
    while page := log.read(after, 1000):
        found.extend(page)
        after = page[-1].id
    return found


def check_ids(log: EventLog) -> list[UUID]:
    return [n.originator_id for n in notifications(log) if n.topic == "nocert:check:Raised"]


def all_checks(app: Platform, log: EventLog) -> list[Check]:
    return [app.check(check_id) for check_id in check_ids(log)]


def list_item(check: Check, now: datetime) -> dict[str, Any]:
    """A check as every list reader sees it: masked, no proof JWS (API.md §4)."""
    document = mask_check(check_document(check, now))
    if document["proof"] is not None:
        document["proof"] = {**document["proof"], "jws": None}
    return document


# -- coverage ---------------------------------------------------------------------------------


def _empty_counts() -> dict[str, Any]:
    return {
        "raised": 0,
        "open": 0,
        "overdue_open": 0,
        "replied_confirmed": 0,
        "replied_not_confirmed": 0,
        "declined": 0,
        "withdrawn": 0,
        "closed_exempted": 0,
        "closed_commitment": 0,
        "closed_applicant_submitted": 0,
        "_answers": [],
        "_on_time": 0,
    }


def _finish(counts: dict[str, Any]) -> dict[str, Any]:
    answers = counts.pop("_answers")
    on_time = counts.pop("_on_time")
    closed = counts["closed_exempted"] + counts["closed_commitment"] + counts["closed_applicant_submitted"]
    counts["exemption_rate"] = (counts["closed_exempted"] + counts["closed_commitment"]) / closed if closed else None
    counts["median_answer_seconds"] = float(statistics.median(answers)) if answers else None
    counts["on_time_rate"] = on_time / len(answers) if answers else None
    return counts


def _count(counts: dict[str, Any], check: Check, now: datetime) -> None:
    counts["raised"] += 1
    if check.status not in ("withdrawn", "closed"):
        counts["open"] += 1
    if check.status in OPEN_UNANSWERED and now > check.due_at:
        counts["overdue_open"] += 1
    if check.proof is not None:
        counts[f"replied_{check.proof.conclusion}"] += 1
    if check.declined is not None:
        counts["declined"] += 1
    if check.status == "withdrawn":
        counts["withdrawn"] += 1
    if check.status == "closed":
        counts[f"closed_{check.outcome}"] += 1
    if check.replied_at is not None:
        counts["_answers"].append((check.replied_at - check.created_on).total_seconds())
        counts["_on_time"] += check.replied_at <= check.due_at


def coverage(
    app: Platform,
    log: EventLog,
    now: datetime,
    *,
    category: str | None = None,
    region: str | None = None,
    checks: list[Check] | None = None,
) -> dict[str, Any]:
    """The §6 document without ``as_of_position``. ``checks``: every check, when the caller has them."""
    catalogue = [app.category(code) for code in app.catalogue().codes]
    departments: dict[str, Any] = {}
    codes = sorted(c.code for c in catalogue if category is None or c.code == category)
    rows = {code: _empty_counts() for code in codes}
    totals = _empty_counts()
    for check in all_checks(app, log) if checks is None else checks:
        if check.category not in rows:
            continue
        if check.approver not in departments:
            departments[check.approver] = app.department(check.approver)
        # a check counts under its approver's region when it was raised (API.md §10)
        raised_in = departments[check.approver].region_at(check.created_on)
        if region is not None and not raised_in.startswith(region_prefix(region)):
            continue
        _count(rows[check.category], check, now)
        _count(totals, check, now)
    names = {c.code: c.name for c in catalogue}
    active = [c for c in catalogue if c.status == "active"]
    return {
        "categories_total": len(active),
        "categories_online": sum(1 for c in active if "collaboration" in c.modes),
        "totals": _finish(totals),
        "categories": [{"code": code, "name": names[code], **_finish(rows[code])} for code in codes],
    }


# -- ledger -----------------------------------------------------------------------------------


def leaf_hash(notification: Any) -> bytes:
    data = rfc8785.dumps(
        {
            "position": notification.id,
            "stream_id": str(notification.originator_id),
            "version": notification.originator_version,
            "type": notification.topic,
            "state_sha256": hashlib.sha256(notification.state).hexdigest(),
        }
    )
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 2.1.1, recursively (no shortcuts)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])).digest()


def audit_items(app: Platform, log: EventLog) -> list[dict[str, Any]]:
    from domain.timefmt import format_time

    items = []
    for index, n in enumerate(notifications(log)):
        items.append(
            {
                "index": index,
                "position": n.id,
                "stream_id": str(n.originator_id),
                "version": n.originator_version,
                "type": n.topic,
                "at": format_time(app.mapper.to_domain_event(n).timestamp),
                "state_b64": base64.b64encode(n.state).decode(),
                "state_sha256": hashlib.sha256(n.state).hexdigest(),
                "leaf_hash": leaf_hash(n).hex(),
            }
        )
    return items


# -- dumps ------------------------------------------------------------------------------------

TABLES = {
    "view_tracking": "view_name",
    "view_departments": "id",
    "view_categories": "code",
    "view_checks": "id",
    "view_coverage": "category, approver_region",
    "ledger_leaves": "idx",
    "ledger_nodes": "level, idx",
    "ledger_state": "id",
    "ledger_checkpoints": "tree_size",
}


def dump(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every views table's rows, in key order, bytes as hex."""

    def plain(value: Any) -> Any:
        if isinstance(value, memoryview | bytes):
            return bytes(value).hex()
        return value

    with database.reading() as cursor:
        return {
            table: [tuple(plain(v) for v in row) for row in cursor.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()]
            for table, key in TABLES.items()
        }


def json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
