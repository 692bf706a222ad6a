"""Domain errors carry the contract's machine-readable code (API.md §9)."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused a command or a read.

    ``code`` is the stable code of API.md §9; the HTTP layer maps it to a status in one place.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.detail!r})"


def not_found(what: str) -> DomainError:
    return DomainError("not_found", f"{what} not found")


def forbidden(detail: str) -> DomainError:
    return DomainError("forbidden", detail)


def invalid_transition(detail: str) -> DomainError:
    return DomainError("invalid_transition", detail)


def conflict(detail: str) -> DomainError:
    return DomainError("conflict", detail)
