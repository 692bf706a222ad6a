"""Positions known only to the server: a PostgreSQL save sends BEGIN ... COMMIT in one pipeline, without
waiting for its events' positions before it sends their attachments (a round trip with the events table
locked, and a wake-up of the Python thread in it).

The insert of a save's events keeps their positions in a transaction-local setting (`POSITIONS`, an array in
insert order) and fails when it inserted nothing (`ALL_INSERTED`: a key was taken; the save is then planned,
`store.writes`). The attachments get `At` references in place of the positions, pass them as statement
parameters as they would the numbers (`domain.ports.Attachment`), and `ResolvingCursor` makes each of them
the setting's element in the statement: the server reads the position where the client would have sent it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from store.database import PostgresCursor

SETTING = "nocert.positions"

#: Wraps an ``INSERT ... RETURNING notification_id`` (``{insert}``): its positions, in insert order, kept in
#: the transaction's `SETTING` and returned; when it inserted nothing, a data error (SQL has no RAISE: an
#: integer cast of text that says why, not constant so that it is not folded when planned).
POSITIONS = (
    "WITH inserted AS ({insert}),"
    " drawn AS (SELECT array_agg(notification_id ORDER BY notification_id) AS ids, count(*) AS n FROM inserted)"
    f" SELECT ids AS positions, set_config('{SETTING}', ids::text, true),"
    " CASE WHEN n = 0 THEN ('nocert: a version is taken, the save is planned ' || n)::integer END AS all_inserted"
    " FROM drawn"
)
AT = f"(current_setting('{SETTING}')::bigint[])[%s]"


@dataclass(frozen=True, slots=True)
class At:
    """The position of the transaction's ``index``-th inserted event (from 1), resolved by the server."""

    index: int


def references(start: int, count: int) -> list[At]:
    """The references of `count` events inserted after `start` others of the transaction."""
    return [At(start + n + 1) for n in range(count)]


class ResolvingCursor(PostgresCursor):
    """A `PostgresCursor` that sends each `At` parameter as the server-side position it stands for."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PostgresCursor:
        if not any(type(value) is At for value in params):
            return super().execute(sql, params)
        parts = [part.replace("%", "%%") for part in sql.split("?")]
        if len(parts) != len(params) + 1:
            raise ValueError(f"{len(params)} parameters for {len(parts) - 1} placeholders: {sql!r}")
        text = [parts[0]]
        for value, part in zip(params, parts[1:], strict=True):
            text.append(AT if type(value) is At else "%s")
            text.append(part)
        values = [value.index if type(value) is At else value for value in params]
        self._cursor.execute("".join(text), values)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if any(type(value) is At for row in rows for value in row):
            for row in rows:
                self.execute(sql, row)
            return
        super().executemany(sql, rows)
