"""Page cursors (API.md §1): opaque to callers, the URL-safe base64 (unpadded) of the JSON
``[kind, key, ...]`` of the list they belong to and the sort key of the last item shown. Anything else, or
a cursor of another list, is a malformed cursor (``validation_error``)."""

from __future__ import annotations

import base64
import binascii
import json

from domain.errors import InvalidInput


def encode_cursor(kind: str, *keys: str) -> str:
    raw = json.dumps([kind, *keys], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(kind: str, cursor: object, width: int = 1) -> list[str]:
    """The `width` keys of a cursor of the list `kind`; InvalidInput for anything else."""
    try:
        if not isinstance(cursor, str) or not cursor.isascii() or "=" in cursor:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError):
        raise InvalidInput("malformed cursor") from None
    if not (
        isinstance(value, list)
        and len(value) == width + 1
        and value[0] == kind
        and all(isinstance(part, str) for part in value[1:])
    ):
        raise InvalidInput("malformed cursor")
    return value[1:]
