"""The audit ledger (API.md §7): one Merkle leaf per event in log order, and signed checkpoints.

Appending stores the leaf and every perfect node it completes (``Frontier.append``), and the frontier
beside the size, so an append costs O(log n) and any root or proof of any size up to the ledger's is
O(log n) node lookups, made in one query. Checkpoints are signed with the ledger key; signing one is not
an event, and a rebuild never deletes them: they are signed history.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.persistence import Notification

from domain.errors import InvalidInput
from domain.timefmt import format_time, parse_time
from signing import merkle
from signing.checkpoints import sign_checkpoint
from signing.key import SigningKey
from signing.leaf import leaf_bytes
from signing.rollback import TreeHead, rollback

MAX_AUDIT_LIMIT = 1000
# API.md §7: a signed checkpoint covers every leaf within 10 s of its recording.
CHECKPOINT_WITHIN = timedelta(seconds=10)
# The follower signs one once the oldest uncovered leaf is this old (it looks once a second): half the bound.
UNCOVERED_GRACE = CHECKPOINT_WITHIN / 2


class NodesInDatabase:
    """`signing.merkle.NodeReader` over ``ledger_nodes``: one query per batch of keys."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def get_nodes(self, keys: list[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        found: dict[merkle.NodeKey, bytes] = {}
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            where = " OR ".join("(level = ? AND idx = ?)" for _ in chunk)
            params = [part for key in chunk for part in key]
            for level, index, digest in self.cursor.execute(
                f"SELECT level, idx, hash FROM ledger_nodes WHERE {where}", params
            ).fetchall():
                found[(int(level), int(index))] = bytes(digest)
        return found


STATE = "SELECT size, frontier FROM ledger_state WHERE id = 1"
LAST_CHECKPOINT = "SELECT MAX(tree_size) AS size FROM ledger_checkpoints"


def frontier_of(size: Any, frontier: Any) -> merkle.Frontier:
    """The frontier of a ``ledger_state`` row (an empty one for none: both NULL)."""
    return merkle.Frontier() if size is None else merkle.Frontier.from_state(int(size), json.loads(frontier))


def size_of(last_checkpoint: Any) -> int:
    """The tree size of the last checkpoint, 0 before any, from `LAST_CHECKPOINT`'s value."""
    return 0 if last_checkpoint is None else int(last_checkpoint)


def read_state(cursor: Any) -> merkle.Frontier:
    row = cursor.execute(STATE).fetchone()
    return frontier_of(None, None) if row is None else frontier_of(row[0], row[1])


def last_checkpoint_size(cursor: Any) -> int:
    row = cursor.execute(LAST_CHECKPOINT).fetchone()
    return size_of(row[0] if row else None)


@dataclass
class LedgerBatch:
    """The ledger's part of one projector batch: leaves appended to the frontier and checkpoints signed
    at every ``checkpoint_every`` leaves since the last one, written by `write` in the batch's transaction."""

    frontier: merkle.Frontier
    checkpointed: int
    signer: SigningKey
    checkpoint_every: int
    clock: Callable[[], datetime]
    leaves: list[tuple[Any, ...]] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    checkpoints: list[tuple[int, str, str, str]] = field(default_factory=list)

    @classmethod
    def start(cls, cursor: Any, signer: SigningKey, checkpoint_every: int, clock: Callable[[], datetime]) -> LedgerBatch:
        return cls(read_state(cursor), last_checkpoint_size(cursor), signer, checkpoint_every, clock)

    def append(self, notification: Notification, at: datetime) -> None:
        state_sha256 = hashlib.sha256(notification.state).hexdigest()
        stream_id = str(notification.originator_id)
        digest = merkle.leaf_hash(
            leaf_bytes(notification.id, stream_id, notification.originator_version, notification.topic, state_sha256)
        )
        index = self.frontier.size
        self.leaves.append(
            (
                index,
                notification.id,
                stream_id,
                notification.originator_version,
                notification.topic,
                format_time(at),
                state_sha256,
                digest,
            )
        )
        self.nodes.extend(self.frontier.append(digest))
        if self.frontier.size - self.checkpointed >= self.checkpoint_every:
            self.checkpoints.append(sign(self.signer, self.frontier, self.clock()))
            self.checkpointed = self.frontier.size

    def write(self, cursor: Any) -> None:
        if self.leaves:
            cursor.executemany(
                "INSERT INTO ledger_leaves (idx, position, stream_id, version, type, at, state_sha256, leaf_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self.leaves,
            )
            cursor.executemany("INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)", self.nodes)
            write_state(cursor, self.frontier)
        insert_checkpoints(cursor, self.checkpoints)


def write_state(cursor: Any, frontier: merkle.Frontier) -> None:
    cursor.execute(
        "UPDATE ledger_state SET size = ?, frontier = ? WHERE id = 1", (frontier.size, json.dumps(frontier.state()))
    )


def sign(signer: SigningKey, frontier: merkle.Frontier, now: datetime) -> tuple[int, str, str, str]:
    """A checkpoint row for the frontier's current size and root."""
    root = frontier.root().hex()
    issued_at = format_time(now)
    return frontier.size, root, issued_at, sign_checkpoint(signer, frontier.size, root, issued_at)


def insert_checkpoints(cursor: Any, rows: Sequence[tuple[int, str, str, str]]) -> None:
    if rows:
        cursor.executemany(
            "INSERT INTO ledger_checkpoints (tree_size, root_hash, issued_at, jws) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tree_size) DO NOTHING",
            rows,
        )


def uncovered_since(cursor: Any) -> datetime | None:
    """The time of the oldest leaf no checkpoint covers, or None when every leaf is covered."""
    size = read_size(cursor)
    covered = last_checkpoint_size(cursor)
    if size <= covered:
        return None
    row = cursor.execute("SELECT at FROM ledger_leaves WHERE idx = ?", (covered,)).fetchone()
    return parse_time(row[0]) if row else None


def checkpoint_uncovered(cursor: Any, signer: SigningKey, now: datetime) -> bool:
    """Signs a checkpoint at the current size when leaves older than the grace period are uncovered."""
    since = uncovered_since(cursor)
    if since is None or now - since < UNCOVERED_GRACE:
        return False
    insert_checkpoints(cursor, [sign(signer, read_state(cursor), now)])
    return True


def verify_checkpoints(cursor: Any, highest: TreeHead | None = None) -> None:
    """Every stored checkpoint's root equals the ledger's root at its size (after a rebuild), and so does
    `highest`, the highest checkpoint ever signed as archived outside the database (`signing.archive`):
    a ledger smaller than that was rolled back, whatever checkpoint rows are left."""
    size = read_size(cursor)
    reader = NodesInDatabase(cursor)
    if highest is not None:
        problem = rollback(highest, size, lambda at: merkle.root_at(at, reader))
        if problem is not None:
            raise LedgerMismatch(f"rollback: {problem}")
    for tree_size, root_hash in cursor.execute(
        "SELECT tree_size, root_hash FROM ledger_checkpoints ORDER BY tree_size"
    ).fetchall():
        if tree_size > size:
            raise LedgerMismatch(f"checkpoint at size {tree_size} is beyond the rebuilt ledger's {size} leaves")
        actual = merkle.root_at(int(tree_size), reader).hex()
        if actual != root_hash:
            raise LedgerMismatch(
                f"checkpoint at size {tree_size} signed root {root_hash}, the event log gives {actual}"
            )


class LedgerMismatch(Exception):
    """The event log no longer gives the roots that were signed: a rebuild refuses to commit."""


# -- reading ----------------------------------------------------------------------------------


def read_size(cursor: Any) -> int:
    row = cursor.execute("SELECT size FROM ledger_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _checkpoint(row: Sequence[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"tree_size": int(row[0]), "root_hash": row[1], "issued_at": row[2], "jws": row[3]}


def latest_checkpoint(cursor: Any) -> dict[str, Any] | None:
    return _checkpoint(
        cursor.execute(
            "SELECT tree_size, root_hash, issued_at, jws FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
    )


def checkpoint(cursor: Any, tree_size: int) -> dict[str, Any] | None:
    return _checkpoint(
        cursor.execute(
            "SELECT tree_size, root_hash, issued_at, jws FROM ledger_checkpoints WHERE tree_size = ?", (tree_size,)
        ).fetchone()
    )


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer")
    return value


def inclusion_proof(cursor: Any, index: int, tree_size: int) -> dict[str, Any]:
    index, tree_size = _count(index, "index"), _count(tree_size, "tree_size")
    size = read_size(cursor)
    if not 1 <= tree_size <= size:
        raise InvalidInput(f"tree_size must be from 1 to the ledger's size {size}")
    if not 0 <= index < tree_size:
        raise InvalidInput("index must be from 0 to tree_size - 1")
    reader = NodesInDatabase(cursor)
    leaf = reader.get_nodes([(0, index)])[(0, index)]
    path = merkle.inclusion_proof(index, tree_size, reader)
    return {"index": index, "tree_size": tree_size, "leaf_hash": leaf.hex(), "path": [node.hex() for node in path]}


def consistency_proof(cursor: Any, first: int, second: int) -> dict[str, Any]:
    first, second = _count(first, "first"), _count(second, "second")
    size = read_size(cursor)
    if not 1 <= first <= second <= size:
        raise InvalidInput(f"consistency needs 1 <= first <= second <= the ledger's size {size}")
    path = merkle.consistency_proof(first, second, NodesInDatabase(cursor))
    return {"first": first, "second": second, "path": [node.hex() for node in path]}


def audit_leaves(cursor: Any, after: int, limit: int) -> list[tuple[Any, ...]]:
    after, limit = _count(after, "after"), _count(limit, "limit")
    if after < 0:
        raise InvalidInput("after must be 0 or more")
    if not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_AUDIT_LIMIT}")
    rows: list[tuple[Any, ...]] = cursor.execute(
        "SELECT idx, position, stream_id, version, type, at, state_sha256, leaf_hash FROM ledger_leaves "
        "WHERE position > ? ORDER BY position LIMIT ?",
        (after, limit),
    ).fetchall()
    return rows


def audit_item(leaf: Sequence[Any], state: bytes) -> dict[str, Any]:
    index, position, stream_id, version, topic, at, state_sha256, digest = leaf
    return {
        "index": int(index),
        "position": int(position),
        "stream_id": stream_id,
        "version": int(version),
        "type": topic,
        "at": at,
        "state_b64": base64.b64encode(state).decode("ascii"),
        "state_sha256": state_sha256,
        "leaf_hash": bytes(digest).hex(),
    }


def position_of_leaf(cursor: Any, index: int) -> int | None:
    """The global position of leaf ``index``, or None when the ledger has no such leaf (yet)."""
    row = cursor.execute("SELECT position FROM ledger_leaves WHERE idx = ?", (index,)).fetchone()
    return None if row is None else int(row[0])
