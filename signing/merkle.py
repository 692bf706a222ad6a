"""Merkle tree hashing and proofs of RFC 9162 section 2.1 (the RFC 6962 tree) over SHA-256.

Storage model: the *perfect node* ``(level, index)`` is the root of the perfect subtree covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 nodes are the leaf hashes. Once a perfect node
exists it never changes, so a ledger stores each one as its leaves arrive (see `Frontier.append`) and every
root or proof of any earlier tree size is computed from them with O(log n) lookups, fetched in one batch
through a `NodeReader`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""A perfect node's ``(level, index)``."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class NodeReader(Protocol):
    """Batch lookup of stored perfect nodes; a database implementation answers with one query."""

    def get_nodes(self, keys: list[NodeKey]) -> dict[NodeKey, bytes]:
        """The hashes of those of `keys` that are stored (missing ones are simply absent)."""
        ...


class MemoryNodes:
    """A `NodeReader` over a dict, for tests and for verifying an exported ledger offline."""

    def __init__(self, nodes: Mapping[NodeKey, bytes] | None = None) -> None:
        self.nodes: dict[NodeKey, bytes] = dict(nodes or {})

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes]) -> MemoryNodes:
        """Every perfect node of the tree over `leaf_hashes`."""
        frontier = Frontier()
        store = cls()
        for leaf in leaf_hashes:
            store.add(frontier.append(leaf))
        return store

    def add(self, completed: Iterable[tuple[int, int, bytes]]) -> None:
        """Store nodes as `Frontier.append` returns them."""
        for level, index, digest in completed:
            self.nodes[(level, index)] = digest

    def get_nodes(self, keys: list[NodeKey]) -> dict[NodeKey, bytes]:
        return {key: self.nodes[key] for key in keys if key in self.nodes}


class Frontier:
    """The right edge of a growing tree: appends and the current root in O(log n).

    `nodes` are the perfect nodes whose subtrees tile leaves ``[0, size)`` from left to right, one per set
    bit of `size`, largest first (the nodes at `edge_keys(size)`), as `load` fetches them from storage or
    `state` renders them for storing beside the size.
    """

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} nodes, not {len(nodes)}")
        self.size = size
        self._nodes = list(nodes)

    @staticmethod
    def edge_keys(size: int) -> list[NodeKey]:
        """The perfect nodes making up the frontier of a tree of `size` leaves, largest first."""
        return list(_keys(_plan(0, size))) if size else []

    @classmethod
    def load(cls, size: int, reader: NodeReader) -> Frontier:
        """Restore the frontier of `size` leaves from stored perfect nodes (one batch lookup)."""
        return cls(size, _lookup(cls.edge_keys(size), reader))

    @classmethod
    def from_state(cls, size: int, state: Sequence[str]) -> Frontier:
        """Restore a frontier saved with `state`."""
        return cls(size, [bytes.fromhex(node) for node in state])

    def state(self) -> list[str]:
        """The frontier nodes as lowercase hex, to store beside `size`."""
        return [node.hex() for node in self._nodes]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every perfect node it completes as (level, index, hash), leaf first."""
        completed = [(0, self.size, leaf)]
        level, index, digest = completed[0]
        while index & 1:
            digest = node_hash(self._nodes.pop(), digest)
            level, index = level + 1, index >> 1
            completed.append((level, index, digest))
        self._nodes.append(digest)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """MTH of all leaves appended so far (`EMPTY_ROOT` for none)."""
        if not self._nodes:
            return EMPTY_ROOT
        root = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            root = node_hash(node, root)
        return root


def subtree_root(start: int, end: int, reader: NodeReader) -> bytes:
    """MTH(leaves[start:end]), for a non-empty range.

    Costs O(log n) lookups for the aligned ranges that roots and proofs use (`start` a multiple of the
    largest power of two below the width); any other range is still computed correctly, from smaller nodes.
    """
    return _roots([(start, end)], reader)[0]


def root_at(size: int, reader: NodeReader) -> bytes:
    """The root hash of the tree of the first `size` leaves."""
    if size < 0:
        raise ValueError("negative tree size")
    return subtree_root(0, size, reader) if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, nearest sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
    return _roots(ranges[::-1], reader)


def consistency_proof(first: int, second: int, reader: NodeReader) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 section 2.1.4.1; needs 1 <= first <= second."""
    if not 1 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    ranges: list[tuple[int, int]] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        split = _largest_power_of_two_below(end - start)
        if m <= split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start, m, whole = start + split, m - split, False
    if not whole:
        ranges.append((start, end))
    return _roots(ranges[::-1], reader)


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does `path` prove `leaf` is leaf `index` of the tree `root` of `size`?"""
    if not (_is_count(index) and _is_count(size) and _is_hash(leaf) and _is_hash(root) and _is_path(path)):
        return False
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree `second_root` of `second` leaves an extension of `first_root`?

    Equal sizes are consistent exactly when the path is empty and the roots are equal.
    """
    if not (
        _is_count(first)
        and _is_count(second)
        and _is_hash(first_root)
        and _is_hash(second_root)
        and _is_path(path)
    ):
        return False
    if not 1 <= first <= second:
        return False
    if first == second:
        return not path and hmac.compare_digest(first_root, second_root)
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(fr, first_root) and hmac.compare_digest(sr, second_root)


# A subtree's plan: the key of one stored perfect node, or the pair of plans it splits into.
_Plan = NodeKey | tuple["_Plan", "_Plan"]


def _plan(start: int, end: int) -> _Plan:
    width = end - start
    if width < 1:
        raise ValueError(f"empty leaf range [{start}, {end})")
    if width & (width - 1) == 0 and start % width == 0:
        level = width.bit_length() - 1
        return (level, start >> level)
    split = start + _largest_power_of_two_below(width)
    return (_plan(start, split), _plan(split, end))


def _keys(plan: _Plan) -> Iterable[NodeKey]:
    if isinstance(plan[0], int):
        yield plan
    else:
        for part in plan:
            yield from _keys(part)


def _evaluate(plan: _Plan, nodes: Mapping[NodeKey, bytes]) -> bytes:
    if isinstance(plan[0], int):
        return nodes[plan]
    left, right = plan
    return node_hash(_evaluate(left, nodes), _evaluate(right, nodes))


def _roots(ranges: list[tuple[int, int]], reader: NodeReader) -> list[bytes]:
    """MTH of each leaf range, from the perfect nodes they need, all fetched in one lookup."""
    plans = [_plan(start, end) for start, end in ranges]
    keys = list(dict.fromkeys(key for plan in plans for key in _keys(plan)))
    nodes = dict(zip(keys, _lookup(keys, reader), strict=True))
    return [_evaluate(plan, nodes) for plan in plans]


def _lookup(keys: list[NodeKey], reader: NodeReader) -> list[bytes]:
    found = reader.get_nodes(keys) if keys else {}
    missing = [key for key in keys if key not in found]
    if missing:
        raise LookupError(f"perfect nodes not stored (level, index): {missing[:5]}")
    return [found[key] for key in keys]


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_path(path: object) -> bool:
    return isinstance(path, list | tuple) and all(_is_hash(p) for p in path)
