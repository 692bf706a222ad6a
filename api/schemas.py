"""Request and response models of the contract (API.md §3–§7), for validation and for /docs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from domain.vocabulary import (
    CategoryStatus,
    CheckStatus,
    Conclusion,
    ConsentMethod,
    DeclineReason,
    Mode,
    Outcome,
    ProofStatus,
    Role,
    SealStatus,
)

Text = Field(min_length=1, max_length=2000)
# NUL is no text, and PostgreSQL cannot store it in the views' TEXT columns (a category's name is one).
NO_NUL = r"^[^\x00]*$"
Name = Field(min_length=1, max_length=200, pattern=NO_NUL)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


# -- requests -----------------------------------------------------------------------------------


class DepartmentCreate(Strict):
    id: StrictStr = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9-]+$")
    name: StrictStr = Name
    uscc: StrictStr = Field(max_length=64)
    roles: list[Role] = Field(min_length=1, max_length=3)
    kind: StrictStr = Field(min_length=1, max_length=64)
    region: StrictStr = Field(pattern=r"^[0-9]{6}$")


class KeyRevocation(Strict):
    reason: StrictStr = Text
    effective_at: StrictStr | None = None


class CategoryCreate(Strict):
    code: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: StrictStr = Name
    issuer_kind: StrictStr = Field(min_length=1, max_length=64)
    modes: list[Mode] = Field(min_length=1, max_length=4)
    sla_hours: StrictFloat | StrictInt = Field(gt=0, le=24 * 365 * 10)
    claims_schema: dict[str, Any] | None = None


class CategoryPatch(Strict):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    modes: list[Mode] | None = Field(default=None, min_length=1, max_length=4)
    sla_hours: StrictFloat | StrictInt | None = Field(default=None, gt=0, le=24 * 365 * 10)
    claims_schema: dict[str, Any] | None = None
    status: CategoryStatus | None = None


class Matter(Strict):
    code: StrictStr = Field(min_length=1, max_length=128)
    name: StrictStr = Name


class Applicant(Strict):
    name: StrictStr = Name
    id_number: StrictStr = Field(max_length=64)


class Consent(Strict):
    method: ConsentMethod
    reference: StrictStr = Field(min_length=1, max_length=256)


class CheckCreate(Strict):
    category: StrictStr = Field(min_length=1, max_length=64)
    matter: Matter
    applicant: Applicant
    claims: dict[str, Any] = Field(default_factory=dict)
    purpose: StrictStr = Text
    consent: Consent
    issuer: StrictStr | None = Field(default=None, max_length=64)


class InfoRequest(Strict):
    question: StrictStr = Text


class InfoSupply(Strict):
    answer: StrictStr = Text


class Forward(Strict):
    to: StrictStr = Field(min_length=1, max_length=64)
    reason: StrictStr = Text


class Reply(Strict):
    conclusion: Conclusion
    statements: dict[str, Any] = Field(default_factory=dict)
    valid_days: StrictInt = Field(default=90, ge=1, le=3650)


class Decline(Strict):
    reason_code: DeclineReason
    note: StrictStr = Field(default="", max_length=2000)


class Withdraw(Strict):
    reason: StrictStr = Field(default="", max_length=2000)


class Close(Strict):
    outcome: Outcome


class Empty(Strict):
    pass


class ProofRevocation(Strict):
    reason: StrictStr = Text


class VerifyRequest(Strict):
    jws: StrictStr = Field(max_length=60000)


BODY_MODELS: tuple[type[BaseModel], ...] = (
    DepartmentCreate, KeyRevocation, CategoryCreate, CategoryPatch, CheckCreate, InfoRequest, InfoSupply,
    Forward, Reply, Decline, Withdraw, Close, Empty, ProofRevocation, VerifyRequest,
)

# -- responses ----------------------------------------------------------------------------------


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str


class Certificate(BaseModel):
    kid: str
    certificate_pem: str
    status: SealStatus
    revoked_at: str | None


class Department(BaseModel):
    id: str
    name: str
    uscc: str
    roles: list[Role]
    kind: str
    region: str
    certificates: list[Certificate]


class Signing(BaseModel):
    kid: str
    certificate_pem: str


class DepartmentCreated(BaseModel):
    id: str
    name: str
    uscc: str
    roles: list[Role]
    kind: str
    region: str
    api_key: str
    api_key_id: str
    signing: Signing | None


class ApiKeyCreated(BaseModel):
    api_key: str
    api_key_id: str


class Category(BaseModel):
    code: str
    name: str
    issuer_kind: str
    modes: list[Mode]
    sla_hours: float
    claims_schema: dict[str, Any] | None
    status: CategoryStatus


class CheckProof(BaseModel):
    id: str
    jws: str | None
    kid: str
    conclusion: Conclusion
    status: ProofStatus


class InfoRequestItem(BaseModel):
    question: str
    answer: str | None
    asked_at: str
    answered_at: str | None


class CheckDecline(BaseModel):
    reason_code: str
    note: str


class Check(BaseModel):
    id: str
    status: CheckStatus
    category: str
    matter: dict[str, Any]
    approver: str
    issuer: str
    applicant: dict[str, Any]
    claims: dict[str, Any]
    purpose: str
    consent: dict[str, Any]
    raised_at: str
    due_at: str
    overdue: bool
    replied_at: str | None
    closed_at: str | None
    outcome: Outcome | None
    proof: CheckProof | None
    decline: CheckDecline | None
    info_requests: list[InfoRequestItem]
    forwarded_from: list[str]
    version: int


class HistoryEvent(BaseModel):
    position: int
    version: int
    type: str
    at: str
    actor: str
    data: dict[str, Any]


class History(BaseModel):
    check_id: str
    events: list[HistoryEvent]


class Page(BaseModel):
    next_cursor: str | None


class CheckPage(Page):
    items: list[Check]


class DepartmentPage(Page):
    items: list[Department]


class CategoryPage(Page):
    items: list[Category]


class ProofRecord(BaseModel):
    id: str
    check_id: str
    jws: str
    status: ProofStatus
    revoked_at: str | None
    revocation_reason: str | None


class Verification(BaseModel):
    valid: bool
    reasons: list[str]
    payload: dict[str, Any] | None
    kid: str | None
    issuer: str | None
    recorded: bool = Field(description="Whether this exact JWS is the proof of a check the platform itself sealed (v1.1)")


class CoverageRow(BaseModel):
    raised: int
    open: int
    overdue_open: int
    replied_confirmed: int
    replied_not_confirmed: int
    declined: int
    withdrawn: int
    closed_exempted: int
    closed_commitment: int
    closed_applicant_submitted: int
    exemption_rate: float | None
    median_answer_seconds: float | None
    on_time_rate: float | None


class CoverageCategory(CoverageRow):
    code: str
    name: str


class Coverage(BaseModel):
    as_of_position: int
    categories_total: int
    categories_online: int
    totals: CoverageRow
    categories: list[CoverageCategory]


class LedgerEvent(BaseModel):
    index: int
    position: int
    stream_id: str
    version: int
    type: str
    at: str
    state_b64: str
    state_sha256: str
    leaf_hash: str


class LedgerPage(BaseModel):
    items: list[LedgerEvent]
    next_after: int | None


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str
    issued_at: str
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


class Health(BaseModel):
    status: str
