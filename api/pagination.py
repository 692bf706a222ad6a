"""Cursor pagination over small, ordered collections (departments, categories).

Cursors are those of the views' lists (`projections.cursor`): ``[kind, key]``, the list they belong to and
the key of the last item shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from projections.cursor import decode_cursor, encode_cursor

Item = TypeVar("Item")


def page(
    items: Sequence[Item], key: Callable[[Item], str], limit: int, cursor: str | None, kind: str = ""
) -> tuple[list[Item], str | None]:
    """Items after the cursor's key, in key order; the next cursor when more remain."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        (after,) = decode_cursor(kind, cursor)
        ordered = [item for item in ordered if key(item) > after]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, encode_cursor(kind, key(chosen[-1])) if more and chosen else None


def listing(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
