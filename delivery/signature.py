"""Standard Webhooks signatures (API.md §11): ``v1`` HMAC-SHA256 under the subscription's secret and
``v1a`` Ed25519 under the platform's webhook key, both over ``<webhook-id>.<webhook-timestamp>.<body>``."""

from __future__ import annotations

import base64
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{webhook_id}.{timestamp}.".encode() + body


def signed_headers(webhook_id: str, timestamp: int, body: bytes, secret: bytes, key: Ed25519PrivateKey) -> dict[str, str]:
    """The headers of a delivery; `secret` is the subscription's ``whsec_`` secret decoded
    (`delivery.secrets.secret_bytes`; the dispatcher decodes each subscription's once a round)."""
    content = signed_content(webhook_id, timestamp, body)
    v1 = base64.b64encode(hmac.digest(secret, content, "sha256")).decode()
    v1a = base64.b64encode(key.sign(content)).decode()
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{v1} v1a,{v1a}",
    }
