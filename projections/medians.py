"""Exact median answer times (API.md §6 ``median_answer_seconds``), kept incrementally.

A *scope* is what one coverage row covers: a category (``""`` for all of them) and an approver region
prefix (``""`` for all regions, else 2, 4 or 6 digits, as `domain.identifiers.region_prefix` makes them).
An answered check counts in the scopes of its category and of all categories, for every prefix of its
approver's region: at most 8.

Answers are never taken back (a check is answered at most once), so each scope only grows:

- ``view_answers`` holds each scope's answer times, ordered by its primary key ``(category, prefix,
  seconds, position)``; ``position`` (of the answering event) makes the order total.
- ``view_medians`` holds each scope's count ``n`` and its middle elements: *lower* at rank (n-1)//2 and
  *upper* at rank n//2 (the same element when n is odd).

A batch that adds k answers to a scope moves its lower middle by at most k/2 + 1 ranks from where it
was, so one index range read of at most k/2 + 2 entries finds the new middles; the reads of all the
scopes a batch touches go to the database together. Reading a median is one
row, however many checks there are; of an even count it is the mean of the middle two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

Scope = tuple[str, str]  # (category or "", region prefix or "")
Key = tuple[float, int]  # (answer seconds, position of the answering event): the order within a scope
Answer = tuple[str, str, float, int]  # (category, approver region, seconds, position)

_IN_SCOPE = "category = ? AND prefix = ?"
_FROM = f"SELECT seconds, position FROM view_answers WHERE {_IN_SCOPE}"
_ASCENDING = "ORDER BY seconds, position"
_DESCENDING = "ORDER BY seconds DESC, position DESC"
# Plans' queries per statement: a longer statement text is parsed anew for every batch by the PostgreSQL
# driver (psycopg caches the parse of statements up to 4096 characters, and prepares one seen 5 times),
# which cost more than the round trip saved (SQLite allows 500 terms in a compound SELECT).
QUERIES_PER_STATEMENT = 18


def scopes(category: str, region: str) -> list[Scope]:
    """The scopes an answer of a check of `category`, raised by an approver in `region`, counts in.
    An approver of unknown region ('') counts only where no region is asked for."""
    prefixes = [""] + ([region[:2], region[:4], region[:6]] if region else [])
    return [(c, p) for c in (category, "") for p in dict.fromkeys(prefixes)]


def add(cursor: Any, answers: Iterable[Answer]) -> None:
    """Adds answers to every scope they count in, and moves each touched scope's middles, in `cursor`'s
    transaction."""
    added: dict[Scope, list[Key]] = defaultdict(list)
    for category, region, seconds, position in answers:
        for scope in scopes(category, region):
            added[scope].append((float(seconds), position))
    if not added:
        return
    touched = sorted(added)
    cursor.executemany(
        "INSERT INTO view_answers (category, prefix, seconds, position) VALUES (?, ?, ?, ?)",
        [(*scope, *key) for scope in touched for key in added[scope]],
    )
    states = _states(cursor, touched)
    plans = {scope: _plan(scope, *_state(states, scope), added[scope]) for scope in touched}
    found = _run(cursor, plans)
    rows = []
    for scope in touched:
        n = states.get(scope, (0, None))[0] + len(added[scope])
        lower, *rest = sorted(found[scope] + plans[scope][2])
        rows.append((*scope, n, *lower, *(lower if n % 2 else rest[0])))
    cursor.executemany(
        "INSERT INTO view_medians (category, prefix, n, lower_seconds, lower_position, upper_seconds, "
        "upper_position) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (category, prefix) DO UPDATE SET "
        "n = excluded.n, lower_seconds = excluded.lower_seconds, lower_position = excluded.lower_position, "
        "upper_seconds = excluded.upper_seconds, upper_position = excluded.upper_position",
        rows,
    )


def _state(states: dict[Scope, tuple[int, Key]], scope: Scope) -> tuple[int, Key | None]:
    """A scope's count and lower middle; (0, None) for a scope without answers yet."""
    return states.get(scope, (0, None))


def _states(cursor: Any, touched: list[Scope]) -> dict[Scope, tuple[int, Key]]:
    """The count and lower middle of each touched scope that has answers already."""
    states: dict[Scope, tuple[int, Key]] = {}
    for start in range(0, len(touched), 100):
        part = touched[start : start + 100]
        where = " OR ".join(f"({_IN_SCOPE})" for _ in part)
        for category, prefix, n, seconds, position in cursor.execute(
            f"SELECT category, prefix, n, lower_seconds, lower_position FROM view_medians WHERE {where}",
            [value for scope in part for value in scope],
        ).fetchall():
            states[(category, prefix)] = (int(n), (float(seconds), int(position)))
    return states


Plan = tuple[str, list[Any], list[Key]]  # a query for a scope's new middles, its parameters, a known one

# The two shapes of a plan's query: from a key up, or down from below a key; each with LIMIT and OFFSET.
# Two shapes only, run in a fixed order, so a batch's statement text depends on how many of each it has
# and the database driver parses it once, not for every batch.
_UP = f"{_FROM} AND (seconds, position) >= (?, ?) {_ASCENDING} LIMIT ? OFFSET ?"
_DOWN = f"{_FROM} AND (seconds, position) < (?, ?) {_DESCENDING} LIMIT ? OFFSET ?"
_BEFORE_ALL: Key = (float("-inf"), -1)  # below every answer


def _plan(scope: Scope, n: int, lower: Key | None, added: list[Key]) -> Plan:
    """How to find the elements at ranks (n2-1)//2 and the next (when there is one) of a scope that had
    `n` answers with lower middle `lower`, and has n2 since `added` (already stored) joined them: a query
    of at most two rows, and the old lower middle when it is one of the two."""
    target = (n + len(added) - 1) // 2
    if lower is None:  # a new scope: all its answers are this batch's
        return _UP, [*scope, *_BEFORE_ALL, 2, target], []
    rank = (n - 1) // 2 + sum(1 for key in added if key < lower)  # where the old lower middle is now
    step = target - rank
    if step >= 0:
        return _UP, [*scope, *lower, 2, step], []
    if step == -1:  # the one before the old lower middle, which becomes the upper one
        return _DOWN, [*scope, *lower, 1, 0], [lower]
    return _DOWN, [*scope, *lower, 2, -step - 2], []


def _run(cursor: Any, plans: dict[Scope, Plan]) -> dict[Scope, list[Key]]:
    """Runs the plans' queries, `QUERIES_PER_STATEMENT` in one statement (one round trip)."""
    found: dict[Scope, list[Key]] = {scope: [] for scope in plans}
    scopes_ = sorted(plans, key=lambda scope: plans[scope][0] != _UP)  # the shapes in a fixed order
    for start in range(0, len(scopes_), QUERIES_PER_STATEMENT):
        part = scopes_[start : start + QUERIES_PER_STATEMENT]
        sql = " UNION ALL ".join(
            f"SELECT {i} AS k, seconds, position FROM ({plans[scope][0]}) AS s{i}" for i, scope in enumerate(part)
        )
        params = [value for scope in part for value in plans[scope][1]]
        for i, seconds, position in cursor.execute(sql, params).fetchall():
            found[part[i]].append((float(seconds), int(position)))
    return found


def read(cursor: Any, prefix: str, category: str | None = None) -> dict[str, float | None]:
    """Median answer seconds by category ('' for all categories) for one region prefix ('' for all);
    with `category`, only it and the all-categories scope."""
    sql = "SELECT category, n, lower_seconds, upper_seconds FROM view_medians WHERE prefix = ?"
    params: list[Any] = [prefix]
    if category is not None:
        sql += " AND category IN (?, '')"
        params.append(category)
    return {
        code: (float(lower) if n % 2 else (lower + upper) / 2)
        for code, n, lower, upper in cursor.execute(sql, params).fetchall()
    }
