"""Signing keys: whatever holds an Ed25519 private key and its certificate (a file today, a hardware module
later) and signs bytes with it. The domain's `domain.ports.Sealer` seals proofs with a department's key;
the ledger's key signs checkpoints."""

from __future__ import annotations

from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing.certificates import kid_of


class SigningKey(Protocol):
    """Signs with an Ed25519 key whose certificate is `certificate` and fingerprint `kid`."""

    @property
    def kid(self) -> str: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `data`."""
        ...


class FileKey:
    """A `SigningKey` over an Ed25519 private key held in memory (loaded from a key file)."""

    def __init__(self, private_key: Ed25519PrivateKey, certificate: x509.Certificate) -> None:
        if private_key.public_key() != certificate.public_key():
            raise ValueError("the certificate does not certify this private key")
        self._private_key = private_key
        self._certificate = certificate
        self._kid = kid_of(certificate)

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        return f"FileKey(kid={self._kid!r})"
