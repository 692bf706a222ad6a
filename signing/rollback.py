"""The rollback rule (API.md §15): the store's ledger must be an append-only extension of every tree head
signed earlier, whether archived by someone (a checkpoint note or JWS) or cosigned by a witness.

`read_archived` turns an archived file into a verified `TreeHead`; `rollback` says why the ledger is not an
extension of it (a problem of kind ``rollback`` for ``nocert audit verify``), or None.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509

from signing.checkpoints import InvalidCheckpoint, verify_checkpoint
from signing.note import NoteError, VerifierKey, open_checkpoint


class ArchivedCheckpointError(ValueError):
    """The file is neither a checkpoint note signed by the ledger key nor a checkpoint JWS under the root."""


@dataclass(frozen=True)
class TreeHead:
    """A tree size and its root hash, as some signed statement gives them; `source` says which."""

    size: int
    root_hash: bytes
    source: str


def read_archived(text: str, root_cert: x509.Certificate, log_keys: Iterable[VerifierKey]) -> TreeHead:
    """The tree head of an archived checkpoint: a C2SP note verified with `log_keys` (the ledger's vkey), or
    a checkpoint JWS verified against `root_cert`. Raises ArchivedCheckpointError."""
    if "\n\n\u2014 " in text:
        try:
            checkpoint, _ = open_checkpoint(text, log_keys)
        except NoteError as error:
            raise ArchivedCheckpointError(f"the checkpoint note does not verify with the ledger's key: {error}") from None
        return TreeHead(checkpoint.size, checkpoint.root_hash, "note")
    try:
        payload = verify_checkpoint(text.strip(), root_cert)
    except InvalidCheckpoint as error:
        raise ArchivedCheckpointError(f"neither a checkpoint note nor a valid checkpoint JWS: {error}") from None
    return TreeHead(payload["tree_size"], bytes.fromhex(payload["root_hash"]), "jws")


def rollback(head: TreeHead, ledger_size: int, root_at: Callable[[int], bytes]) -> str | None:
    """Why a ledger of `ledger_size` leaves, whose root at any size `root_at` gives, does not extend `head`."""
    if ledger_size < head.size:
        return f"the ledger has {ledger_size} leaves, fewer than the {head.size} of a checkpoint signed earlier ({head.source})"
    if not hmac.compare_digest(root_at(head.size), head.root_hash):
        return f"the ledger's root at size {head.size} differs from a checkpoint's signed earlier ({head.source}): its history was rewritten"
    return None
