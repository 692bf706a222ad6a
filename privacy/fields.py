"""One field of personal data sealed under a subject key: ``ncs1:<key id>:<base64url(nonce + AES-GCM
ciphertext of the field's compact JSON)>``, the associated data naming where the field lives (stream, version
and field for an event; the view and field for a view's document), so a sealed field cannot be moved."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidTag

from privacy.keys import NONCE, DataKey, SubjectKeyError, SubjectKeys

PREFIX = "ncs1:"


def is_sealed(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id_of(token: str) -> str:
    return token[len(PREFIX):].partition(":")[0]


def seal(key: DataKey, context: str, value: Any, *, synthetic: bool = False) -> str:
    """`value` sealed under `key` in `context`. ``synthetic``: the nonce is an HMAC of the context and the
    value (the synthetic-IV construction), so the same value in the same place seals to the same text — what
    lets a rebuilt view equal the live one; a nonce then repeats only with the very same message."""
    clear = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()  # keys stay in their order
    if synthetic:
        nonce = hmac.new(key.nonce_key, context.encode() + b"\x00" + clear, hashlib.sha256).digest()[:NONCE]
    else:
        nonce = secrets.token_bytes(NONCE)
    sealed = nonce + key.aead.encrypt(nonce, clear, context.encode())
    return f"{PREFIX}{key.key_id}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"


def open_sealed(keys: SubjectKeys, context: str, token: str) -> Any:
    """The field's value; raises `SubjectKeyErased` when its key was erased, `SubjectKeyError` otherwise."""
    key_id, _, body = token[len(PREFIX):].partition(":")
    aead = keys.get(key_id).aead
    blob = base64.urlsafe_b64decode(body.encode("ascii"))
    try:
        clear = aead.decrypt(blob[:NONCE], blob[NONCE:], context.encode())
    except InvalidTag:
        raise SubjectKeyError(f"a sealed field does not open in its place ({context})") from None
    return json.loads(clear)


def event_context(stream_id: object, version: int, field: str) -> str:
    return f"nocert:event:{stream_id}:{version}:{field}"


def view_context(check_id: object, field: str) -> str:
    return f"nocert:view:{check_id}:{field}"
