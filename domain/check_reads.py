"""Reads of checks derived from their streams: a check as of a time, the check of a proof, and whether
its proof is valid now by the recorded facts (§4, §5). Mixed into `domain.platform.Platform`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.check import Check
from domain.department import Department
from domain.errors import NotFound
from domain.proof import check_id_of_proof


class CheckReads:
    """Mixed into `domain.platform.Platform`, which provides ``check``, ``check_events`` and ``department``."""

    def check(self, check_id: UUID, version: int | None = None) -> Check:
        raise NotImplementedError

    def check_events(self, check_id: UUID) -> list[Check.Event]:
        raise NotImplementedError

    def department(self, department_id: str) -> Department:
        raise NotImplementedError

    def check_as_of(self, check_id: UUID, moment: datetime) -> Check:
        """The check as it was at ``moment``: after its last event recorded at or before then."""
        version = None
        for domain_event in self.check_events(check_id):
            if domain_event.timestamp > moment:
                break
            version = domain_event.originator_version
        if version is None:
            raise NotFound.of("check at that time")
        return self.check(check_id, version)

    def check_of_proof(self, proof_id: UUID) -> Check:
        check = self.check(check_id_of_proof(proof_id))
        if check.proof is None or check.proof.id != proof_id:
            raise NotFound.of("proof")
        return check

    def proof_valid(self, check: Check, now: datetime, sealer: Department | None = None) -> bool:
        """The §5 validity of the check's proof from recorded facts: not revoked, key not revoked
        at or before its issue, and not expired. ``sealer``: the sealing department, if read already."""
        proof = check.proof
        if proof is None:
            return False
        if sealer is None or sealer.department_id != proof.sealer:
            sealer = self.department(proof.sealer)
        seal = sealer.seals.get(proof.kid)
        return seal is not None and proof.valid_at(now, seal.revoked_at)
