"""The subjects' endpoints (API.md §14): request bodies and answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr

from api.schemas import Strict, Text, Time, Uuid


class SubjectQuery(Strict):
    """The identity number travels in the body only (API.md §14)."""

    id_number: StrictStr = Field(max_length=64)
    limit: StrictInt = Field(default=50, ge=1, le=500)
    cursor: StrictStr | None = Field(default=None, max_length=512)


class SubjectErase(Strict):
    id_number: StrictStr = Field(max_length=64)
    legal_basis: StrictStr = Text


class Party(BaseModel):
    id: str
    name: str | None


class CategoryRef(BaseModel):
    code: str
    name: str | None


class ConsentRef(BaseModel):
    method: str | None


class Access(BaseModel):
    check_id: Uuid
    raised_at: Time
    approver: Party
    issuer: Party
    category: CategoryRef
    matter: dict[str, Any]
    purpose: str
    consent: ConsentRef
    status: str
    outcome: str | None
    replied_at: Time | None
    closed_at: Time | None


class Accesses(BaseModel):
    subject: str
    items: list[Access]
    next_cursor: str | None


class Erasure(BaseModel):
    subject: str
    erased_at: Time
    checks: int
    receipt: str


class ErasureRecord(BaseModel):
    id: Uuid
    erased_at: Time
    checks: int
    receipt: str


class ErasurePage(BaseModel):
    items: list[ErasureRecord]
    next_cursor: str | None
