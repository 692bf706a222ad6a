"""Request and response models of the contract (API.md §3–§7), for validation and for /docs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, WithJsonSchema

from domain.vocabulary import (
    CategoryStatus,
    CheckStatus,
    Conclusion,
    ConsentMethod,
    DeclineReason,
    DepartmentStatus,
    Mode,
    Outcome,
    ProofStatus,
    Role,
    SealStatus,
)

# Times are RFC 3339 in UTC, ids of checks, proofs and streams UUIDs (API.md §1): strings on the wire, typed
# as such for generated clients. (Strings here, so that the answers keep the service's own spelling.)
Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Uuid = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
StrictTime = Annotated[StrictStr, WithJsonSchema({"type": "string", "format": "date-time"})]

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


class DepartmentPatch(Strict):
    """API.md §10: any of the three; a field left out stays as it is (null is refused)."""

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    region: StrictStr | None = Field(default=None, pattern=r"^[0-9]{6}$")
    status: DepartmentStatus | None = None


class OfficerCreate(Strict):
    login: StrictStr = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9._-]+$")
    name: StrictStr = Name


class KeyRevocation(Strict):
    reason: StrictStr = Text
    effective_at: StrictTime | None = None


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


class Urge(Strict):
    note: StrictStr = Text


class SubscriptionCreate(Strict):
    url: StrictStr = Field(min_length=1, max_length=2000)
    types: list[StrictStr] | None = None


class Empty(Strict):
    pass


class ProofRevocation(Strict):
    reason: StrictStr = Text


class VerifyRequest(Strict):
    jws: StrictStr = Field(max_length=60000)



# (`api.openapi.BODY_MODELS` lists the body models; the subjects' are in `api.subject_schemas`.)

# -- responses ----------------------------------------------------------------------------------


class ProblemItem(BaseModel):
    loc: list[str]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is the stable code of API.md §9, ``errors`` the fields a
    ``validation_error`` found wrong."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemItem] | None = None


class Certificate(BaseModel):
    kid: str
    certificate_pem: str
    status: SealStatus
    revoked_at: Time | None


class Department(BaseModel):
    id: str
    name: str
    uscc: str
    roles: list[Role]
    kind: str
    region: str
    status: DepartmentStatus
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
    id: Uuid
    jws: str | None
    kid: str
    conclusion: Conclusion
    status: ProofStatus


class InfoRequestItem(BaseModel):
    question: str
    answer: str | None
    asked_at: Time
    answered_at: Time | None


class CheckDecline(BaseModel):
    reason_code: DeclineReason
    note: str


class CheckApplicant(BaseModel):
    """The applicant as ``Applicant`` gives it; ``id_number`` masked for most readers (API.md §4)."""

    name: str | None
    id_number: str | None


class Check(BaseModel):
    id: Uuid
    status: CheckStatus
    category: str
    matter: Matter
    approver: str
    issuer: str
    applicant: CheckApplicant  # name and id_number null once the applicant was erased (API.md §14)
    claims: dict[str, Any] | None
    purpose: str
    consent: Consent
    raised_at: Time
    due_at: Time
    overdue: bool
    replied_at: Time | None
    closed_at: Time | None
    outcome: Outcome | None
    proof: CheckProof | None
    decline: CheckDecline | None
    info_requests: list[InfoRequestItem]
    forwarded_from: list[str]
    version: int
    overdue_since: str | None = None  # §13: the time of the check's current Overdue
    urged: int = 0  # §13: how often the approver urged


class HistoryEvent(BaseModel):
    position: int
    version: int
    type: str
    at: Time
    actor: str
    officer: str | None = Field(description="The login of the officer who acted (§12); null for the platform")
    data: dict[str, Any]


class History(BaseModel):
    check_id: Uuid
    events: list[HistoryEvent]


class Page(BaseModel):
    next_cursor: str | None


class CheckPage(Page):
    items: list[Check]


class DepartmentPage(Page):
    items: list[Department]


class Officer(BaseModel):
    login: str
    name: str
    department: str
    status: str = Field(description="active, or removed (its login stays taken)")


class OfficerCreated(Officer):
    enrolment_code: str = Field(description="Shown this once; the officer sets a password with it at /ui/enrol")


class OfficerPage(Page):
    items: list[Officer]


class CategoryPage(Page):
    items: list[Category]


class ProofRecord(BaseModel):
    id: Uuid
    check_id: Uuid
    jws: str | None  # null once the applicant was erased (API.md §14)
    status: ProofStatus
    revoked_at: Time | None
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


class Health(BaseModel):
    status: str
