"""API keys (API.md §1, §3): their format, generation and hashing, and the constant-time comparisons that
authenticate a department's key or the operator's admin key. Keys are shown once; only hashes are kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "nck"


@dataclass(frozen=True)
class IssuedKey:
    """An API key as shown once to its holder; only its hash is recorded."""

    api_key: str
    api_key_id: str


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key(department_id: str) -> tuple[IssuedKey, str]:
    """A fresh key ``nck_<department>_<key id>_<32 random bytes>`` and its hash."""
    key_id = secrets.token_hex(8)
    api_key = f"{API_KEY_PREFIX}_{department_id}_{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(api_key, key_id), hash_api_key(api_key)


def key_owner(api_key: str) -> tuple[str, str] | None:
    """The department id and key id a well-formed key names, or None for anything else."""
    parts = api_key.split("_", 3)
    if len(parts) != 4 or parts[0] != API_KEY_PREFIX:
        return None
    return parts[1], parts[2]


def key_matches(key_hash: str, api_key: str) -> bool:
    """Whether `api_key` is the key recorded as `key_hash`, compared in constant time."""
    return hmac.compare_digest(key_hash, hash_api_key(api_key))


def is_admin_key(token: str, admin_key: str | None) -> bool:
    """Whether `token` is the configured admin key (none configured: never), compared in constant time."""
    if not admin_key:
        return False
    return hmac.compare_digest(token.encode(), admin_key.encode())
