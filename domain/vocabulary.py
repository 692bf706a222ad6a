"""The contract's vocabularies (API.md §3–§6) as enumerations: the one list of each, from which the domain's
rules, the HTTP schemas (`api.schemas`) and the views' SQL take theirs."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    APPROVER = "approver"
    ISSUER = "issuer"
    AUDITOR = "auditor"


class DepartmentStatus(StrEnum):
    """An inactive department is no routing target, cannot be named as issuer, and its keys answer 401."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class Mode(StrEnum):
    """How a proof category can be checked instead of being brought."""

    COLLABORATION = "collaboration"
    DATA_SHARING = "data_sharing"
    COMMITMENT = "commitment"
    CANCELLED = "cancelled"


class CategoryStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class CheckStatus(StrEnum):
    RAISED = "raised"
    ACCEPTED = "accepted"
    INFO_REQUESTED = "info_requested"
    REPLIED = "replied"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


class Conclusion(StrEnum):
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"


class DeclineReason(StrEnum):
    NO_RECORD = "no_record"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    OTHER = "other"


class Outcome(StrEnum):
    """How a check was closed: the citizen was exempted, signed a commitment, or brought the paper."""

    EXEMPTED = "exempted"
    COMMITMENT = "commitment"
    APPLICANT_SUBMITTED = "applicant_submitted"


class ConsentMethod(StrEnum):
    FACE = "face"
    SIGNATURE = "signature"
    APP = "app"


class ProofStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


class SealStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


def values(vocabulary: type[StrEnum]) -> tuple[str, ...]:
    """The plain strings of a vocabulary, in its order."""
    return tuple(member.value for member in vocabulary)
