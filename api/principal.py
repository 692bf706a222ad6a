"""Who is calling: the admin principal or a department, from the ``Authorization`` header."""

from __future__ import annotations

from dataclasses import dataclass

from domain.credentials import is_admin_key
from domain.department import Department
from domain.platform import Platform

ADMIN = "admin"
# Not a valid department id (those are [a-z0-9-]), so the operator never shares an id with a department.
ADMIN_PRINCIPAL_ID = "@admin"


@dataclass(frozen=True)
class Principal:
    id: str
    roles: frozenset[str]
    department: Department | None = None
    #: The officer acting for the department (``X-Officer``, API.md §12; the signed-in officer in the
    #: workbench), checked by the platform's commands; None for the admin and for calls naming none.
    officer: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.department is None

    def has_role(self, role: str) -> bool:
        return role in self.roles


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(app: Platform, admin_key: str | None, token: str) -> Principal | None:
    """The principal holding ``token``, compared in constant time; None for an unknown or revoked key."""
    if is_admin_key(token, admin_key):
        return Principal(ADMIN_PRINCIPAL_ID, frozenset({ADMIN}))
    department = app.authenticate(token)
    if department is None:
        return None
    return Principal(department.department_id, frozenset(department.roles), department)
