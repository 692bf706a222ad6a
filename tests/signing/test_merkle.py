"""RFC 9162 Merkle trees: published vectors, a brute-force reference, and tamper properties."""

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signing.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path("/work/shared/vectors/merkle")
REFERENCE = json.loads((VECTORS / "rfc6962-reference-tree.json").read_text())
REFERENCE_LEAVES = [leaf_hash(bytes.fromhex(data)) for data in REFERENCE["leaf_inputs_hex"]]
REFERENCE_NODES = MemoryNodes.from_leaf_hashes(REFERENCE_LEAVES)


# The reference: RFC 9162 section 2.1 written as plain recursion over the leaf hashes.


def _split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, whole):
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = _split(n)
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(40)]
NODES = MemoryNodes.from_leaf_hashes(LEAVES)


def _b64(value):
    return base64.b64decode(value)


def _vector_files(kind):
    return sorted(VECTORS.glob(f"{kind}-*.json"), key=lambda file: file.name)


# Published vectors (transparency-dev/merkle)


def test_hasher_vectors():
    hasher = REFERENCE["hasher"]
    assert EMPTY_ROOT.hex() == hasher["empty_root"]
    assert leaf_hash(b"").hex() == hasher["empty_leaf"]
    assert leaf_hash(b"L123456").hex() == hasher["leaf_L123456"]
    assert node_hash(b"N123", b"N456").hex() == hasher["node_N123_N456"]


@pytest.mark.parametrize("size", range(len(REFERENCE["root_hashes_hex"])))
def test_reference_roots_by_size(size):
    want = REFERENCE["root_hashes_hex"][size]
    frontier = Frontier()
    for leaf in REFERENCE_LEAVES[:size]:
        frontier.append(leaf)
    assert frontier.root().hex() == want
    assert root_at(size, REFERENCE_NODES).hex() == want


@pytest.mark.parametrize("file", _vector_files("inclusion"), ids=lambda file: file.stem)
def test_inclusion_vectors(file):
    v = json.loads(file.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    valid = verify_inclusion(v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), proof, _b64(v["root"]))
    assert valid is (not v["wantErr"])
    if not v["wantErr"]:
        assert inclusion_proof(v["leafIdx"], v["treeSize"], REFERENCE_NODES) == proof
        assert root_at(v["treeSize"], REFERENCE_NODES) == _b64(v["root"])


@pytest.mark.parametrize("file", _vector_files("consistency"), ids=lambda file: file.stem)
def test_consistency_vectors(file):
    v = json.loads(file.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    valid = verify_consistency(v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), proof)
    assert valid is (not v["wantErr"])
    if not v["wantErr"]:
        assert consistency_proof(v["size1"], v["size2"], REFERENCE_NODES) == proof


# Generated proofs against the reference


def test_frontier_roots_and_nodes_match_reference():
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for size, leaf in enumerate(LEAVES, start=1):
        completed = frontier.append(leaf)
        assert completed[0] == (0, size - 1, leaf)
        for level, index, digest in completed:
            assert digest == mth(LEAVES[index << level : (index + 1) << level])
        assert frontier.size == size
        assert frontier.root() == mth(LEAVES[:size]) == root_at(size, NODES)


@pytest.mark.parametrize("size", range(1, 41))
def test_inclusion_proofs_match_reference(size):
    root = mth(LEAVES[:size])
    for index in range(size):
        proof = inclusion_proof(index, size, NODES)
        assert proof == path(index, LEAVES[:size])
        assert verify_inclusion(index, size, LEAVES[index], proof, root)


@pytest.mark.parametrize("second", range(1, 41))
def test_consistency_proofs_match_reference(second):
    second_root = mth(LEAVES[:second])
    for first in range(1, second + 1):
        proof = consistency_proof(first, second, NODES)
        assert proof == subproof(first, LEAVES[:second], True)
        assert verify_consistency(first, second, mth(LEAVES[:first]), second_root, proof)


def test_subtree_root_of_any_range():
    for start in range(0, 20):
        for end in range(start + 1, 40):
            assert subtree_root(start, end, NODES) == mth(LEAVES[start:end])


class CountingNodes(MemoryNodes):
    def __init__(self, nodes):
        super().__init__(nodes)
        self.calls = []

    def get_nodes(self, keys):
        self.calls.append(list(keys))
        return super().get_nodes(keys)


def test_proofs_fetch_few_nodes_in_one_batch():
    size = 1000
    leaves = (leaf_hash(i.to_bytes(2, "big")) for i in range(size))
    reader = CountingNodes(MemoryNodes.from_leaf_hashes(leaves).nodes)
    for compute in (
        lambda: inclusion_proof(617, size, reader),
        lambda: consistency_proof(377, size, reader),
        lambda: root_at(size - 1, reader),
    ):
        reader.calls.clear()
        compute()
        assert len(reader.calls) == 1
        assert len(reader.calls[0]) <= 2 * size.bit_length()


def test_frontier_restores_from_state_and_from_stored_nodes():
    frontier = Frontier()
    for leaf in LEAVES[:23]:
        frontier.append(leaf)
    for restored in (Frontier.from_state(23, frontier.state()), Frontier.load(23, NODES)):
        assert restored.root() == frontier.root()
        for leaf in LEAVES[23:]:
            restored.append(leaf)
        assert restored.root() == mth(LEAVES)
    assert Frontier.load(0, NODES).root() == EMPTY_ROOT


def test_frontier_refuses_a_state_of_the_wrong_shape():
    with pytest.raises(ValueError):
        Frontier(3, [LEAVES[0]])


def test_proof_arguments_out_of_range_are_refused():
    for index, size in ((0, 0), (5, 5), (-1, 3)):
        with pytest.raises(ValueError):
            inclusion_proof(index, size, NODES)
    for first, second in ((0, 5), (6, 5)):
        with pytest.raises(ValueError):
            consistency_proof(first, second, NODES)


def test_missing_nodes_are_reported():
    with pytest.raises(LookupError):
        inclusion_proof(0, 41, NODES)


# Malformed input never verifies and never raises


def test_malformed_inclusion_input_is_rejected():
    proof = inclusion_proof(5, 13, NODES)
    root = mth(LEAVES[:13])
    assert verify_inclusion(5, 13, LEAVES[5], proof, root)
    cases = [
        (13, 13, LEAVES[5], proof, root),
        (-1, 13, LEAVES[5], proof, root),
        (5, 13, LEAVES[5], [*proof, proof[0]], root),
        (5, 13, LEAVES[5], proof[:-1], root),
        (5, 13, LEAVES[5][:31], proof, root),
        (5, 13, LEAVES[5], [*proof[:-1], proof[-1] + b"\x00"], root),
        (5, 13, LEAVES[5], proof, "not bytes"),
        ("5", 13, LEAVES[5], proof, root),
        (True, 13, LEAVES[5], proof, root),
        (5, 8, LEAVES[5], proof, root),
        (5, 13, LEAVES[5], None, root),
        (0, 1, LEAVES[0], [LEAVES[1]], LEAVES[0]),
    ]
    for case in cases:
        assert verify_inclusion(*case) is False, case


def test_malformed_consistency_input_is_rejected():
    first_root, second_root = mth(LEAVES[:6]), mth(LEAVES[:13])
    proof = consistency_proof(6, 13, NODES)
    assert verify_consistency(6, 13, first_root, second_root, proof)
    cases = [
        (6, 13, first_root, second_root, []),
        (6, 13, first_root, second_root, proof[:-1]),
        (6, 13, first_root, second_root, [*proof, proof[0]]),
        (6, 13, second_root, first_root, proof),
        (13, 6, first_root, second_root, proof),
        (0, 13, EMPTY_ROOT, second_root, []),
        (6, 6, first_root, first_root, proof),
        (6, 6, first_root, second_root, []),
        (6, 13, first_root[:16], second_root, proof),
        (-6, 13, first_root, second_root, proof),
        (6, 13, first_root, second_root, None),
    ]
    for case in cases:
        assert verify_consistency(*case) is False, case
    assert verify_consistency(6, 6, first_root, first_root, [])


def _flip(proof, element, bit):
    flipped = bytearray(proof[element])
    flipped[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:element], bytes(flipped), *proof[element + 1 :]]


@given(st.data())
def test_any_bit_flip_breaks_an_inclusion_proof(data):
    size = data.draw(st.integers(2, 40))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, NODES)
    element = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(index, size, LEAVES[index], _flip(proof, element, bit), mth(LEAVES[:size]))


@given(st.data())
def test_any_bit_flip_breaks_a_consistency_proof(data):
    second = data.draw(st.integers(2, 40))
    first = data.draw(st.integers(1, second - 1))
    proof = consistency_proof(first, second, NODES)
    element = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    assert not verify_consistency(
        first, second, mth(LEAVES[:first]), mth(LEAVES[:second]), _flip(proof, element, bit)
    )
