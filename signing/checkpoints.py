"""Signed ledger checkpoints (API.md section 7): a tree size and its root hash, sealed by the ledger key."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.timefmt import parse_time
from signing import jws
from signing.certificates import is_issued_by, is_ledger_certificate, is_valid_at, kid_of
from signing.key import SigningKey

CHECKPOINT_TYP = "nocert-checkpoint+jws"

_ROOT_HASH = re.compile(r"[0-9a-f]{64}", re.ASCII)


class InvalidCheckpoint(ValueError):
    """A checkpoint that does not verify; the message says why."""


def sign_checkpoint(signer: SigningKey, tree_size: int, root_hash_hex: str, issued_at: str) -> str:
    """The compact JWS of the checkpoint ``{"tree_size", "root_hash", "issued_at"}``."""
    payload = {"tree_size": tree_size, "root_hash": root_hash_hex, "issued_at": issued_at}
    _checked_issued_at(payload)
    return jws.seal(signer, CHECKPOINT_TYP, payload)


def verify_checkpoint(text: str, root_cert: x509.Certificate) -> dict[str, Any]:
    """The checkpoint's payload, once its signature, ledger certificate and fields check out.

    Raises InvalidCheckpoint otherwise.
    """
    try:
        parsed = jws.parse_compact(text)
    except jws.MalformedJWS as exc:
        raise InvalidCheckpoint(str(exc)) from None
    if parsed.header.get("typ") != CHECKPOINT_TYP:
        raise InvalidCheckpoint(f"typ is not {CHECKPOINT_TYP}")
    cert = jws.certificate_of(parsed.header)
    if cert is None:
        raise InvalidCheckpoint("x5c is missing or unparseable")
    if not is_issued_by(cert, root_cert):
        raise InvalidCheckpoint("the certificate is not issued by the platform root")
    if not is_ledger_certificate(cert):
        raise InvalidCheckpoint("the certificate is not the ledger's")
    if parsed.header.get("kid") != kid_of(cert):
        raise InvalidCheckpoint("kid is not the certificate's fingerprint")
    public_key = cert.public_key()
    if not isinstance(public_key, Ed25519PublicKey) or not jws.verify_signature(parsed, public_key):
        raise InvalidCheckpoint("bad signature")
    if not is_valid_at(cert, _checked_issued_at(parsed.payload)):
        raise InvalidCheckpoint("issued_at lies outside the certificate's validity")
    return parsed.payload


def _checked_issued_at(payload: dict[str, Any]) -> datetime:
    """The checkpoint's issue time, once every field has the contract's form."""
    tree_size = payload.get("tree_size")
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
        raise InvalidCheckpoint("tree_size is not a non-negative integer")
    if not isinstance(payload.get("root_hash"), str) or not _ROOT_HASH.fullmatch(payload["root_hash"]):
        raise InvalidCheckpoint("root_hash is not 64 lowercase hex digits")
    try:
        return parse_time(payload.get("issued_at"))
    except ValueError:
        raise InvalidCheckpoint("issued_at is not an RFC 3339 time") from None
