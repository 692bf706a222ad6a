"""Standard Webhooks signatures (API.md §11): ``v1`` HMAC-SHA256 under the subscription's secret and
``v1a`` Ed25519 under the platform's webhook key, both over ``<webhook-id>.<webhook-timestamp>.<body>``."""

from __future__ import annotations

import base64
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from delivery.secrets import secret_bytes


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{webhook_id}.{timestamp}.".encode() + body


def headers(webhook_id: str, timestamp: int, body: bytes, secret: str, key: Ed25519PrivateKey) -> dict[str, str]:
    return signed_headers(webhook_id, timestamp, body, secret_bytes(secret), key)


def signed_headers(webhook_id: str, timestamp: int, body: bytes, secret: bytes, key: Ed25519PrivateKey) -> dict[str, str]:
    """`headers` under the secret's decoded bytes (the dispatcher decodes each subscription's once a round)."""
    content = signed_content(webhook_id, timestamp, body)
    v1 = base64.b64encode(hmac.digest(secret, content, "sha256")).decode()
    v1a = base64.b64encode(key.sign(content)).decode()
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{v1} v1a,{v1a}",
    }
