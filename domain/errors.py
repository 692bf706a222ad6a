"""Domain errors, one class per contract code (API.md §9): the HTTP layer maps ``code`` to a status in one
place (`api.problems`)."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A rule of the domain refused a command or a read; ``code`` is the stable code of API.md §9."""

    code: ClassVar[str] = "validation_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class InvalidInput(DomainError, ValueError):
    """A field of a command or a parameter of a read has no allowed value (422)."""

    code = "validation_error"


class NotFound(DomainError):
    code = "not_found"

    @classmethod
    def of(cls, what: str) -> NotFound:
        return cls(f"{what} not found")


class Forbidden(DomainError):
    code = "forbidden"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class Conflict(DomainError):
    code = "conflict"


class ConcurrentUpdate(DomainError):
    code = "concurrent_update"


class NoSigningKey(DomainError):
    code = "no_signing_key"


class InvalidIdNumber(DomainError):
    code = "invalid_id_number"


class InvalidUscc(DomainError):
    code = "invalid_uscc"


class InvalidClaims(DomainError):
    code = "invalid_claims"


class UnknownCategory(DomainError):
    code = "unknown_category"


class CategoryUnavailable(DomainError):
    code = "category_unavailable"


class NoRoute(DomainError):
    code = "no_route"


class AmbiguousRoute(DomainError):
    code = "ambiguous_route"


class InvalidIssuer(DomainError):
    code = "invalid_issuer"


class InvalidUrl(DomainError):
    code = "invalid_url"
