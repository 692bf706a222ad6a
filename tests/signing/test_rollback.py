"""The rollback rule over archived checkpoints (C2SP notes and JWS) and witnesses' tree heads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing import merkle
from signing.certificates import issue_ledger_certificate
from signing.checkpoints import sign_checkpoint
from signing.key import FileKey
from signing.note import NoteSigner, checkpoint_note, parse_vkey
from signing.rollback import ArchivedCheckpointError, TreeHead, read_archived, rollback

from .conftest import EPOCH

ORIGIN = "nocert.localhost/ledger"
LEAVES = [merkle.leaf_hash(b"event %d" % i) for i in range(20)]


def root_at(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    nodes = merkle.MemoryNodes.from_leaf_hashes(leaves)
    return lambda size: merkle.root_at(size, nodes)


@pytest.fixture(scope="module")
def ledger(root):  # type: ignore[no-untyped-def]
    key = Ed25519PrivateKey.generate()
    return FileKey(key, issue_ledger_certificate(*root, key.public_key(), not_before=EPOCH))


def test_archived_notes_and_jws_give_their_tree_head(root, ledger) -> None:  # type: ignore[no-untyped-def]
    signer = NoteSigner.from_signer(ORIGIN, ledger)
    keys = [parse_vkey(signer.vkey)]
    root_hash = root_at(LEAVES)(12)
    assert read_archived(checkpoint_note(signer, 12, root_hash), root[1], keys) == TreeHead(12, root_hash, "note")
    issued_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    jws = sign_checkpoint(ledger, 12, root_hash.hex(), issued_at)
    assert read_archived(jws + "\n", root[1], keys) == TreeHead(12, root_hash, "jws")


def test_archived_files_that_do_not_verify_are_refused(root, ledger, dept_seal) -> None:  # type: ignore[no-untyped-def]
    signer = NoteSigner.from_signer(ORIGIN, ledger)
    other = NoteSigner.from_signer(ORIGIN, dept_seal)
    keys = [parse_vkey(signer.vkey)]
    note = checkpoint_note(signer, 12, root_at(LEAVES)(12))
    for text in (
        note.replace("\n12\n", "\n13\n"),  # altered
        checkpoint_note(other, 12, root_at(LEAVES)(12)),  # signed by another key
        sign_checkpoint(dept_seal, 12, "00" * 32, "2026-01-01T00:00:00.000000Z"),  # a JWS by a seal, not the ledger
        "not a checkpoint",
    ):
        with pytest.raises(ArchivedCheckpointError):
            read_archived(text, root[1], keys)


def test_rollback_is_a_smaller_ledger_or_another_root() -> None:
    head = TreeHead(12, root_at(LEAVES)(12), "note")
    assert rollback(head, 12, root_at(LEAVES)) is None
    assert rollback(head, 20, root_at(LEAVES)) is None  # grown since: an extension
    assert "fewer than the 12" in rollback(head, 11, root_at(LEAVES[:11]))  # events deleted
    rewritten = LEAVES[:5] + [merkle.leaf_hash(b"forged")] + LEAVES[6:]
    assert "differs" in rollback(head, 20, root_at(rewritten))  # an event replaced, the ledger rebuilt
