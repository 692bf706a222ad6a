"""The keys of webhooks, in the key directory (``NOCERT_KEY_DIR``), never in the event store:

- ``webhook-secrets.key``: 32 random bytes, the AES-256-GCM key that seals each subscription's ``whsec_``
  secret before it goes into the Subscription's event. The dispatcher needs the secret itself for the
  ``v1`` HMAC, so a hash would not do; whoever has the event store but not this file cannot sign.
- ``webhook.key``: the platform's Ed25519 webhook key (``v1a``), PEM, under ``NOCERT_KEY_PASSPHRASE`` when
  one is set; its public half is served at ``GET /v1/trust/webhook-key``.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_PREFIX = "whsec_"
PUBLIC_PREFIX = "whpk_"
NONCE_BYTES = 12


def new_secret() -> str:
    """A subscription's secret: ``whsec_`` and the base64 of 32 random bytes (§11)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The decoded bytes a ``v1`` signature is keyed with."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


class WebhookKeys:
    """The sealing key of secrets and the Ed25519 webhook key, created on first use (mode 0600)."""

    def __init__(self, key_dir: Path, passphrase: bytes | None = None) -> None:
        self._dir = Path(key_dir)
        self._passphrase = passphrase or None
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._aead: AESGCM | None = None
        self._signing: Ed25519PrivateKey | None = None

    def seal(self, secret: str) -> str:
        """The secret encrypted (nonce + ciphertext, base64), bound to its purpose."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, secret.encode("ascii"), b"nocert webhook secret")
        return base64.b64encode(nonce + sealed).decode("ascii")

    def unseal(self, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return self._cipher().decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], b"nocert webhook secret").decode("ascii")

    def signing_key(self) -> Ed25519PrivateKey:
        if self._signing is None:
            path = self._dir / "webhook.key"

            def create() -> bytes:
                encryption: serialization.KeySerializationEncryption = (
                    serialization.BestAvailableEncryption(self._passphrase) if self._passphrase else serialization.NoEncryption()
                )
                return Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
                )

            key = serialization.load_pem_private_key(self._load_or_create(path, create), self._passphrase)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            self._signing = key
        return self._signing

    def public_key(self) -> str:
        """``whpk_`` and the base64 of the raw Ed25519 public key (§11)."""
        raw = self.signing_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._load_or_create(self._dir / "webhook-secrets.key", lambda: secrets.token_bytes(32)))
        return self._aead

    def _load_or_create(self, path: Path, create: object) -> bytes:
        fd = os.open(self._dir / ".webhook.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not path.exists():
                assert callable(create)
                data: bytes = create()
                temp = path.with_name(f".{path.name}.new")
                with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, path)
            return path.read_bytes()
        finally:
            os.close(fd)
