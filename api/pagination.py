"""Cursor pagination over small, ordered collections (departments, categories).

A cursor is the URL-safe base64 (unpadded) of the JSON ``[kind, key]``: the list it belongs to and the
key of the last item shown. Anything else, or a cursor of another list, is a malformed cursor (422).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from api.problems import Problem

Item = TypeVar("Item")


def encode_cursor(key: str, kind: str = "") -> str:
    raw = json.dumps([kind, key], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str = "") -> str:
    try:
        if not cursor.isascii() or "=" in cursor:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError):
        raise Problem("validation_error", "malformed cursor") from None
    if not (isinstance(value, list) and len(value) == 2 and value[0] == kind and isinstance(value[1], str)):
        raise Problem("validation_error", "malformed cursor")
    return value[1]


def page(
    items: Sequence[Item], key: Callable[[Item], str], limit: int, cursor: str | None, kind: str = ""
) -> tuple[list[Item], str | None]:
    """Items after the cursor's key, in key order; the next cursor when more remain."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        after = decode_cursor(cursor, kind)
        ordered = [item for item in ordered if key(item) > after]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, encode_cursor(key(chosen[-1]), kind) if more and chosen else None


def listing(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
