"""The HTTP side of idempotency keys (API.md §1): which keys are valid and when two bodies are the same
request. The records themselves are kept by `store.idempotency`."""

from __future__ import annotations

import hashlib
import json

import rfc8785


def request_fingerprint(body: bytes) -> str:
    """SHA-256 of the body's RFC 8785 form, so JSON-equal bodies match; raw bytes otherwise."""
    try:
        canonical = rfc8785.dumps(json.loads(body)) if body.strip() else b"{}"
    except (ValueError, rfc8785.CanonicalizationError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def valid_key(key: str) -> bool:
    """1-255 printable ASCII characters (0x20-0x7E; HTTP trims spaces at either end)."""
    return 1 <= len(key) <= 255 and all(0x20 <= ord(c) <= 0x7E for c in key)
