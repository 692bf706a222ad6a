"""The ledger the views serve (leaves, roots, checkpoints, inclusion and consistency proofs) against an
independent recomputation from the event store, with RFC 6962 section 2.1 written out as plain recursion.

The Merkle code itself is tested against published vectors in tests/signing; this checks the ledger built
from a real log, on both durable stores."""

from __future__ import annotations

import base64
import hashlib
import uuid

import rfc8785

from tests.audit.conftest import World


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def split(n: int) -> int:
    """The largest power of two strictly less than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def reference_leaves(world: World) -> list[dict]:
    """Every leaf recomputed from the event store's rows (not from the application's code)."""
    store = world.store()
    leaves = []
    for position in store.positions():
        stream_id, version, topic, state = store.row(position)
        stream_id = str(uuid.UUID(stream_id))  # SQLite stores it as hex
        data = rfc8785.dumps(
            {
                "position": position,
                "stream_id": stream_id,
                "version": version,
                "type": topic,
                "state_sha256": hashlib.sha256(state).hexdigest(),
            }
        )
        leaves.append(
            {
                "position": position,
                "stream_id": stream_id,
                "version": version,
                "type": topic,
                "state": state,
                "hash": sha256(b"\x00" + data),
            }
        )
    return leaves


def test_served_leaves_are_the_event_store(world: World) -> None:
    leaves = reference_leaves(world)
    views = world.services.views
    served, after = [], 0
    while True:
        page = views.audit_events(after, 7)
        served += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert len(served) == len(leaves) == views.ledger_size()
    for index, (item, leaf) in enumerate(zip(served, leaves, strict=True)):
        assert item["index"] == index
        assert (item["position"], item["stream_id"], item["version"], item["type"]) == (
            leaf["position"], leaf["stream_id"], leaf["version"], leaf["type"]
        )
        assert base64.b64decode(item["state_b64"]) == leaf["state"]
        assert item["state_sha256"] == hashlib.sha256(leaf["state"]).hexdigest()
        assert item["leaf_hash"] == leaf["hash"].hex()


def test_checkpoints_sign_the_reference_roots(world: World) -> None:
    hashes = [leaf["hash"] for leaf in reference_leaves(world)]
    views = world.services.views
    sizes = [size for size, _ in world.store().checkpoints()]
    assert sizes[:-1] == list(range(5, 5 * len(sizes), 5)) and sizes[-1] == len(hashes)
    for size in sizes:
        checkpoint = views.checkpoint(size)
        assert checkpoint["root_hash"] == mth(hashes[:size]).hex()
    assert views.latest_checkpoint()["tree_size"] == len(hashes)


def test_every_inclusion_and_consistency_proof(world: World) -> None:
    hashes = [leaf["hash"] for leaf in reference_leaves(world)]
    views = world.services.views
    n = len(hashes)
    for size in range(1, n + 1):
        for index in range(size):
            served = views.inclusion_proof(index, size)
            assert served["leaf_hash"] == hashes[index].hex()
            assert served["path"] == [node.hex() for node in path(index, hashes[:size])], (index, size)
        for first in range(1, size + 1):
            served = views.consistency_proof(first, size)
            assert served["path"] == [node.hex() for node in subproof(first, hashes[:size], True)], (first, size)
