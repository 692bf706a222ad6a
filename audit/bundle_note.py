"""The checkpoint note of an evidence bundle (``checkpoint_note``, API.md §15): the bundle's checkpoint as a
C2SP ``tlog-checkpoint`` note signed by the ledger key, with the cosignatures of the witnesses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signing import certificates
from signing.note import (
    ED25519,
    NoteError,
    VerifierKey,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_note,
    raw_public_key,
)


def check_checkpoint_note(
    bundle: dict[str, Any], tree_size: int, root_hash: bytes, witnesses: Sequence[VerifierKey]
) -> tuple[list[str], list[str]]:
    """Faults and notes about the bundle's note: it must be signed by the key of ``ledger_certificate_pem``
    under its origin, give the checkpoint's size and root, and carry a valid cosignature of each of
    `witnesses`. A bundle without a note fails only when witnesses are asked for."""
    text = bundle.get("checkpoint_note")
    if text is None:
        return (["the bundle holds no checkpoint note, so no witness cosignature"] if witnesses else []), []
    try:
        ledger = certificates.load_pem(bundle["ledger_certificate_pem"]).public_key()
        if not isinstance(ledger, Ed25519PublicKey):
            raise NoteError("the ledger key is not an Ed25519 key")
        origin = parse_checkpoint(parse_note(text).text).origin
        log_key = VerifierKey(origin, ED25519, raw_public_key(ledger))
        checkpoint, _ = open_checkpoint(text, [log_key])
        verified = open_note(text, [log_key, *witnesses])
    except (NoteError, ValueError, TypeError, KeyError) as error:
        return [f"checkpoint_note is not a checkpoint note signed by the ledger key: {error}"], []
    failures, notes = [], []
    if (checkpoint.size, checkpoint.root_hash) != (tree_size, root_hash):
        failures.append("checkpoint_note gives another tree size or root than the checkpoint")
    failures += [f"no valid cosignature of witness {w.name} on the checkpoint note" for w in witnesses if not verified.signed_by(w)]
    cosigned = sorted({signature.name for signature in verified.verified} - {origin})
    if cosigned:
        notes.append(f"the checkpoint was cosigned by the witnesses {', '.join(cosigned)} (verified)")
    others = sorted({signature.name for signature in verified.unverified})
    if others:
        notes.append(f"cosignatures of {', '.join(others)} are not verified here: name their vkeys with --witness")
    return failures, notes
