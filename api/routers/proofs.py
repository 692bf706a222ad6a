"""Sealed proofs (API.md §5): read, verify, revoke."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.access import sees_proof_jws
from api.body import body_route, read_body
from api.bootstrap import Services
from api.deps import Issuer, PrincipalDep, ServicesDep, StoreAt, parse_uuid
from api.principal import Principal
from api.problems import Problem, problem_responses
from api.responses import ok
from api.schemas import ProofRecord, ProofRevocation, Verification, VerifyRequest
from api.trust import PlatformTrust
from domain.check import Check
from domain.timefmt import format_time
from signing.proofs import verify_proof

router = APIRouter(prefix="/v1/proofs", tags=["proofs"])


def proof_record(check: Check) -> dict[str, Any]:
    proof = check.proof
    assert proof is not None
    return {
        "id": str(proof.id),
        "check_id": str(check.id),
        "jws": proof.jws,
        "status": proof.status,
        "revoked_at": format_time(proof.revoked_at) if proof.revoked_at else None,
        "revocation_reason": proof.revocation_reason,
    }


def visible_proof(services: Services, proof_id: str, principal: Principal) -> Check:
    """The proof's check if the caller is its approver, its sealing issuer or an auditor; else 404."""
    check = services.platform.check_of_proof(parse_uuid(proof_id, "proof"))
    if not sees_proof_jws(check, principal):
        raise Problem("not_found", "proof not found")
    return check


@body_route(
    router.post, "/verify", VerifyRequest, "unauthenticated", "unsupported_media_type", "malformed_json", "validation_error",
    response_model=Verification,
)
def verify(request: Request, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    """Judges a proof by every rule of §5; an invalid proof is a 200 with ``valid: false``."""
    body = read_body(request, VerifyRequest)
    root = services.keystore.root()[1]
    trust = PlatformTrust(services.platform)
    verdict = verify_proof(body.jws, root, trust, services.platform.clock())
    return {**asdict(verdict), "recorded": trust.recorded(verdict.payload, body.jws)}


@router.get("/{proof_id}", response_model=ProofRecord, responses=problem_responses("unauthenticated", "not_found"))
def read_proof(proof_id: str, principal: PrincipalDep, services: ServicesDep, min_position: StoreAt = None) -> dict[str, Any]:
    """The proof with its revocation state, for its approver, its sealing issuer and auditors."""
    return proof_record(visible_proof(services, proof_id, principal))


@body_route(
    router.post, "/{proof_id}/revoke", ProofRevocation,
    "unauthenticated", "forbidden", "not_found", "validation_error", "invalid_transition", "invalid_officer",
    response_model=ProofRecord,
)
def revoke_proof(proof_id: str, request: Request, issuer: Issuer, services: ServicesDep) -> JSONResponse:
    """The sealing issuer revokes its proof: ``ProofRevoked`` on the check's stream."""
    visible_proof(services, proof_id, issuer)
    body = read_body(request, ProofRevocation)
    check, position = services.platform.revoke_proof(
        parse_uuid(proof_id, "proof"), issuer.id, body.reason, issuer.officer
    )
    return ok(services, proof_record(check), position)
