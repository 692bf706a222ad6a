"""A log to witness (leaves in memory, checkpoints signed like the platform's ledger) and a witness over
a temporary state directory, with an HTTP client on its app."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from signing import certificates, merkle
from signing.key import FileKey
from signing.note import NoteSigner, checkpoint_note, parse_vkey
from witness import identity
from witness.app import create_app
from witness.core import Witness, render_add_checkpoint
from witness.state import WitnessState

ORIGIN = "nocert.localhost/ledger"


class Log:
    """A transparency log of `size` leaves whose checkpoints are signed notes, as the platform serves them."""

    def __init__(self, origin: str = ORIGIN, size: int = 0, seed: str = "") -> None:
        root_key, root_cert = certificates.create_root()
        key = Ed25519PrivateKey.generate()
        ledger = FileKey(key, certificates.issue_ledger_certificate(root_key, root_cert, key.public_key()))
        self.signer = NoteSigner.from_signer(origin, ledger)
        self.leaves: list[bytes] = []
        self.seed = seed
        self.grow(size)

    @property
    def vkey(self) -> str:
        return self.signer.vkey

    @property
    def size(self) -> int:
        return len(self.leaves)

    def grow(self, count: int) -> Log:
        start = len(self.leaves)
        self.leaves += [merkle.leaf_hash(f"{self.seed}leaf {i}".encode()) for i in range(start, start + count)]
        return self

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return merkle.root_at(size, merkle.MemoryNodes.from_leaf_hashes(self.leaves[:size]))

    def note(self, size: int | None = None) -> str:
        size = self.size if size is None else size
        return checkpoint_note(self.signer, size, self.root(size))

    def proof(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, merkle.MemoryNodes.from_leaf_hashes(self.leaves[:new]))

    def request(self, old: int, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return render_add_checkpoint(old, self.proof(old, size) if 0 < old < size else [], self.note(size))


@pytest.fixture
def log() -> Log:
    return Log(size=10)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "witness"


@pytest.fixture
def witness(state_dir: Path, log: Log) -> Witness:
    cosigner = identity.load_or_create(state_dir, "audit.example/witness")
    return Witness(cosigner, WitnessState(state_dir), [parse_vkey(log.vkey)])


@pytest.fixture
def http(witness: Witness) -> Iterator[TestClient]:
    with TestClient(create_app(witness), base_url="http://witness.test") as client:
        yield client


def origin_hash(origin: str = ORIGIN) -> str:
    return hashlib.sha256(origin.encode()).hexdigest()
