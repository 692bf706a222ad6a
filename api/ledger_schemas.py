"""The answers of the audit endpoints (API.md §7): ledger events, checkpoints and Merkle proofs."""

from __future__ import annotations

from pydantic import BaseModel

from api.schemas import Time, Uuid


class LedgerEvent(BaseModel):
    index: int
    position: int
    stream_id: Uuid
    version: int
    type: str
    at: Time
    state_b64: str
    state_sha256: str
    leaf_hash: str


class LedgerPage(BaseModel):
    items: list[LedgerEvent]
    next_after: int | None


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str
    issued_at: Time
    jws: str


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    path: list[str]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    path: list[str]
