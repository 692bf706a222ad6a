"""The exemption coverage view (API.md §6), kept incrementally.

``view_coverage`` holds counters per (category, approver region). When a check changes, the projector
adds ``contribution(after) - contribution(before)``: `contribution` is the one place that knows which
counters a check counts in. ``overdue_open`` depends on the time of reading: it is counted at read time
from the ``(status, due_at)`` index of ``view_checks`` (only open checks past their due time are read).
``median_answer_seconds`` is an order statistic, kept per scope by `projections.medians`.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.check_rules import CONCLUSIONS, OPEN_UNANSWERED, OUTCOMES, TERMINAL
from domain.errors import InvalidInput
from domain.identifiers import region_prefix, validate_region
from domain.timefmt import format_time
from projections import medians as answer_medians
from projections.schema import COUNTERS

Contribution = tuple[int, ...]
ZERO: Contribution = (0,) * len(COUNTERS)

UPSERT = (
    f"INSERT INTO view_coverage (category, approver_region, {', '.join(COUNTERS)}) "
    f"VALUES (?, ?, {', '.join('?' for _ in COUNTERS)}) "
    f"ON CONFLICT (category, approver_region) DO UPDATE SET "
    + ", ".join(f"{name} = view_coverage.{name} + excluded.{name}" for name in COUNTERS)
)


def contribution(row: Mapping[str, Any] | None) -> Contribution:
    """What one check counts in each counter of ``COUNTERS``, from its ``view_checks`` columns (status,
    answer, outcome, answered_at, on_time: `projections.checks.answer_facts`); None counts nothing."""
    if row is None:
        return ZERO
    status, answer, outcome = row["status"], row["answer"], row["outcome"]
    closed = status == "closed"
    return (
        1,  # raised
        int(status not in TERMINAL),  # open
        *(int(answer == conclusion) for conclusion in CONCLUSIONS),
        int(answer == "declined"),
        int(status == "withdrawn"),
        *(int(closed and outcome == each) for each in OUTCOMES),
        int(row["answered_at"] is not None),  # answered
        int(row["on_time"] == 1),  # answered_on_time
    )


def difference(after: Contribution, before: Contribution) -> Contribution:
    return tuple(map(operator.sub, after, before))


def add(total: Contribution, delta: Contribution) -> Contribution:
    return tuple(map(operator.add, total, delta))


# -- reading ----------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _row(counts: Mapping[str, int], overdue_open: int, median: float | None) -> dict[str, Any]:
    closed = counts["closed_exempted"] + counts["closed_commitment"] + counts["closed_applicant_submitted"]
    return {
        "raised": counts["raised"],
        "open": counts["open"],
        "overdue_open": overdue_open,
        "replied_confirmed": counts["replied_confirmed"],
        "replied_not_confirmed": counts["replied_not_confirmed"],
        "declined": counts["declined"],
        "withdrawn": counts["withdrawn"],
        "closed_exempted": counts["closed_exempted"],
        "closed_commitment": counts["closed_commitment"],
        "closed_applicant_submitted": counts["closed_applicant_submitted"],
        "exemption_rate": _ratio(counts["closed_exempted"] + counts["closed_commitment"], closed),
        "median_answer_seconds": median,
        "on_time_rate": _ratio(counts["answered_on_time"], counts["answered"]),
    }


def read_coverage(
    cursor: Any, now: datetime, position: int, *, category: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """The §6 document, from one snapshot (`cursor`) of the views at tracking ``position``."""
    categories = cursor.execute("SELECT code, name, status, modes FROM view_categories ORDER BY code").fetchall()
    known = {code: (name, status, json.loads(modes)) for code, name, status, modes in categories}
    if category is not None and category not in known:
        raise InvalidInput(f"unknown category {category!r}")
    if region is not None:
        validate_region(region)

    conditions: list[str] = []
    params: list[Any] = []
    if category is not None:
        conditions.append("category = ?")
        params.append(category)
    if region is not None:
        conditions.append("approver_region LIKE ?")
        params.append(region_prefix(region) + "%")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""

    sums = ", ".join(f"SUM({name})" for name in COUNTERS)
    counts: dict[str, dict[str, int]] = {}
    for code, *values in cursor.execute(
        f"SELECT category, {sums} FROM view_coverage {where} GROUP BY category", params
    ).fetchall():
        counts[code] = {name: int(value or 0) for name, value in zip(COUNTERS, values, strict=True)}

    open_statuses = sorted(OPEN_UNANSWERED)
    overdue_where = " AND ".join(
        [f"status IN ({', '.join('?' for _ in open_statuses)})", "due_at < ?", *conditions]
    )
    overdue = dict(
        cursor.execute(
            f"SELECT category, COUNT(*) FROM view_checks WHERE {overdue_where} GROUP BY category",
            [*open_statuses, format_time(now), *params],
        ).fetchall()
    )
    medians = answer_medians.read(cursor, region_prefix(region) if region is not None else "", category)

    zero = dict.fromkeys(COUNTERS, 0)
    codes = [category] if category is not None else sorted(set(known) | set(counts))
    rows = []
    for code in codes:
        row = _row(counts.get(code, zero), int(overdue.get(code, 0)), medians.get(code))
        rows.append({"code": code, "name": known[code][0] if code in known else code, **row})
    totals = {name: sum(counts.get(code, zero)[name] for code in codes) for name in COUNTERS}
    active = [code for code, (_, status, _) in known.items() if status == "active"]
    return {
        "as_of_position": position,
        "categories_total": len(active),
        "categories_online": sum(1 for code in active if "collaboration" in known[code][2]),
        "totals": _row(
            totals, sum(int(overdue.get(code, 0)) for code in codes), medians.get(category if category is not None else "")
        ),
        "categories": rows,
    }
