"""Object-level access (API.md §4, §5): who may read a check, see its personal data and its proof, and
which checks a department's lists show. Every route and presenter asks here."""

from __future__ import annotations

from api.principal import Principal
from domain.check import Check
from domain.vocabulary import Role

# Everything the province's citizen app may call (API.md §14); any other call of its key is refused (403).
CITIZEN_PORTAL_CALLS = frozenset({("POST", "/v1/subjects/accesses"), ("GET", "/v1/categories")})


def may_call(principal: Principal, method: str, path: str) -> bool:
    """Whether the principal's roles allow this call at all (before any route's own rule)."""
    return not principal.has_role(Role.CITIZEN_PORTAL) or (method, path) in CITIZEN_PORTAL_CALLS


def can_read_check(check: Check, principal: Principal) -> bool:
    """Approver, current issuer, former issuers and auditors read a check. Only a department is a
    party: the operator's principal id (``admin``) is also a valid department id."""
    return principal.has_role("auditor") or (principal.department is not None and check.is_party(principal.id))


def sees_full_numbers(check: Check, principal: Principal) -> bool:
    return principal.department is not None and check.sees_personal_data(principal.id)


def sees_proof_jws(check: Check, principal: Principal) -> bool:
    """The approver, the issuer that sealed the proof, and auditors."""
    sealer = check.proof.sealer if check.proof else None
    return principal.has_role("auditor") or (principal.department is not None and principal.id in (check.approver, sealer))


def sees_full_bundle(check: Check, principal: Principal) -> bool:
    """An evidence bundle with the stored states and the proof, identity numbers in full: for those who may
    see the proof (the approver, the sealing issuer, auditors); anyone else gets a masked one."""
    return sees_proof_jws(check, principal)


def list_scope(principal: Principal) -> dict[str, str]:
    """The checks `GET /v1/checks` shows: auditors all; approvers the checks they raised; issuers those
    addressed to them now; a department with both roles either (as ``party``)."""
    if principal.has_role("auditor"):
        return {}
    if principal.has_role("approver") and principal.has_role("issuer"):
        return {"party": principal.id}
    if principal.has_role("approver"):
        return {"approver": principal.id}
    return {"issuer": principal.id}
