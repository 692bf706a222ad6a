"""Standard Webhooks signatures (API.md §11): ``v1`` HMAC-SHA256 under the subscription's secret and
``v1a`` Ed25519 under the platform's webhook key, both over ``<webhook-id>.<webhook-timestamp>.<body>``.

The ``v1a`` signature depends on the delivery only through that content, so the subscriptions that get the
same body under the same id in the same second share one (`Signatures`: an Ed25519 signature costs
about as much as the rest of a delivery's signing and headers together)."""

from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{webhook_id}.{timestamp}.".encode() + body


class Signatures:
    """The ``v1a`` signatures made under one key (a dispatcher round's): each content signed once. `key`
    gives the key when the first is made (a round with nothing to send does not load it)."""

    def __init__(self, key: Callable[[], Ed25519PrivateKey]) -> None:
        self._key = key
        self._lock = threading.Lock()
        self._made: dict[tuple[str, int, bytes], str] = {}

    def v1a(self, webhook_id: str, timestamp: int, body: bytes, content: bytes) -> str:
        key = (webhook_id, timestamp, body)  # a shared body's hash is computed once (bytes keep it)
        found = self._made.get(key)
        if found is None:
            found = base64.b64encode(self._key().sign(content)).decode()
            with self._lock:
                self._made[key] = found
        return found


def signed_headers(webhook_id: str, timestamp: int, body: bytes, secret: bytes, signatures: Signatures) -> dict[str, str]:
    """The headers of a delivery; `secret` is the subscription's ``whsec_`` secret decoded
    (`delivery.secrets.secret_bytes`; the dispatcher decodes each subscription's once a round)."""
    content = signed_content(webhook_id, timestamp, body)
    v1 = base64.b64encode(hmac.digest(secret, content, "sha256")).decode()
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{v1} v1a,{signatures.v1a(webhook_id, timestamp, body, content)}",
    }
