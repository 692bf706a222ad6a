"""Witnesses' cosignatures of the ledger's checkpoints (API.md §15), kept in ``ledger_cosignatures``.

A row is one C2SP ``tlog-cosignature`` line of one witness key over the checkpoint note of one tree size.
Like the checkpoints, they are signed history: a rebuild never deletes them. The note served at
``GET /v1/log/checkpoint`` is the ledger key's note of the latest checkpoint (Ed25519 is deterministic, so
the same bytes every time) followed by the cosignature lines stored for its size.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from signing.note import NoteSigner, Signature, add_signatures, checkpoint_note, cosignature_time, parse_signature_lines


def record(cursor: Any, tree_size: int, signatures: Iterable[Signature]) -> int:
    """Stores cosignature lines for `tree_size` (a line already stored is kept as it is); returns how many."""
    rows = [
        (tree_size, signature.name, signature.key_id.hex(), signature.line, cosignature_time(signature))
        for signature in signatures
    ]
    if rows:
        cursor.executemany(
            "INSERT INTO ledger_cosignatures (tree_size, witness, key_id, line, cosigned_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tree_size, witness, key_id) DO NOTHING",
            rows,
        )
    return len(rows)


def for_size(cursor: Any, tree_size: int) -> list[Signature]:
    """The cosignature lines stored for the checkpoint of `tree_size`, in the order of their witnesses."""
    rows = cursor.execute(
        "SELECT line FROM ledger_cosignatures WHERE tree_size = ? ORDER BY witness, key_id", (tree_size,)
    ).fetchall()
    return [signature for (line,) in rows for signature in parse_signature_lines(line)]


def witnessed_size(cursor: Any, witness: str, key_id: bytes) -> int:
    """The largest tree size this witness key cosigned, as far as the platform stored (0 for none)."""
    row = cursor.execute(
        "SELECT MAX(tree_size) FROM ledger_cosignatures WHERE witness = ? AND key_id = ?", (witness, key_id.hex())
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def newest_cosigned(cursor: Any) -> tuple[int, str] | None:
    """The tree size and ``issued_at`` of the newest checkpoint any witness cosigned, or None."""
    row = cursor.execute(
        "SELECT c.tree_size, c.issued_at FROM ledger_checkpoints c "
        "WHERE c.tree_size = (SELECT MAX(tree_size) FROM ledger_cosignatures)"
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def note(signer: NoteSigner, checkpoint: dict[str, Any], cosignatures: Iterable[Signature]) -> str:
    """The checkpoint's C2SP note signed by the ledger key, with the cosignature lines after its own."""
    text = checkpoint_note(signer, int(checkpoint["tree_size"]), bytes.fromhex(checkpoint["root_hash"]))
    return add_signatures(text, cosignatures)
