"""Cursor pagination over small, ordered collections (departments, categories)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from api.problems import Problem

Item = TypeVar("Item")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise Problem("validation_error", "malformed cursor") from None


def page(
    items: Sequence[Item], key: Callable[[Item], str], limit: int, cursor: str | None
) -> tuple[list[Item], str | None]:
    """Items after the cursor's key, in key order; the next cursor when more remain."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [item for item in ordered if key(item) > after]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, encode_cursor(key(chosen[-1])) if more and chosen else None


def listing(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
