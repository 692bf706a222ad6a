"""The platform's record of departments, key revocations and revoked proofs, for proof verification."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.errors import DomainError
from domain.platform import Platform
from signing.certificates import load_pem
from signing.crl import Revocation
from signing.proofs import CertificateTrust, DepartmentTrust


def seal_revocations(app: Platform) -> list[Revocation]:
    """Every revoked seal certificate of every department, with the moment its revocation takes effect."""
    revoked = []
    for department_id in app.directory().listings:
        for seal in app.department(department_id).seals.values():
            if seal.revoked_at is not None:
                revoked.append(Revocation(load_pem(seal.certificate_pem.encode("ascii")), seal.revoked_at))
    return revoked


class PlatformTrust:
    """Implements signing.proofs.Trust from the event store (key history included)."""

    def __init__(self, app: Platform) -> None:
        self.app = app

    def department(self, department_id: str) -> DepartmentTrust | None:
        try:
            department = self.app.department(department_id)
        except DomainError:
            return None
        return DepartmentTrust(
            department.department_id,
            {kid: CertificateTrust(kid, seal.revoked_at) for kid, seal in department.seals.items()},
        )

    def recorded(self, payload: dict[str, Any] | None, text: str) -> bool:
        """Whether `text` is exactly the proof of a check the platform sealed (API.md §5 v1.1 ``recorded``):
        a valid signature on anything else means a seal key was used outside the platform."""
        if payload is None:
            return False
        try:
            check = self.app.check_of_proof(UUID(str(payload.get("id"))))
        except (ValueError, DomainError):
            return False
        return check.proof is not None and check.proof.jws == text

    def proof_revoked(self, payload: dict[str, Any]) -> bool:
        try:
            check = self.app.check_of_proof(UUID(str(payload.get("id"))))
        except (ValueError, DomainError):
            return False
        return check.proof is not None and check.proof.revoked_at is not None
