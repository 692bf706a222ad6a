"""The audit ledger (API.md §7): events, signed checkpoints, inclusion and consistency proofs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Auditor, ServicesDep, ViewsAt
from api.ledger_schemas import CheckpointOut, ConsistencyProof, InclusionProof, LedgerPage
from api.problems import Problem, problem_responses

router = APIRouter(prefix="/v1/audit", tags=["audit"])
ERRORS = problem_responses("unauthenticated", "forbidden", "validation_error", "not_caught_up")
Size = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/events", response_model=LedgerPage, responses=ERRORS)
def events(
    auditor: Auditor,
    services: ServicesDep,
    after: Size = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_position: ViewsAt = None,
) -> dict[str, Any]:
    """Ledger leaves with the stored event bytes, in the order of the global log."""
    return services.views.audit_events(after, limit)


@router.get("/checkpoints/latest", response_model=CheckpointOut, responses=problem_responses("unauthenticated", "forbidden", "not_found"))
def latest_checkpoint(auditor: Auditor, services: ServicesDep, min_position: ViewsAt = None) -> dict[str, Any]:
    """The latest signed checkpoint of the ledger (404 before the first)."""
    checkpoint = services.views.latest_checkpoint()
    if checkpoint is None:
        raise Problem("not_found", "no checkpoint has been signed yet")
    return checkpoint


@router.get("/checkpoints", response_model=CheckpointOut, responses=problem_responses("unauthenticated", "forbidden", "not_found", "validation_error"))
def checkpoint_at(auditor: Auditor, services: ServicesDep, tree_size: Size, min_position: ViewsAt = None) -> dict[str, Any]:
    """The checkpoint signed at this tree size (404 if none was)."""
    checkpoint = services.views.checkpoint(tree_size)
    if checkpoint is None:
        raise Problem("not_found", f"no checkpoint was signed at tree size {tree_size}")
    return checkpoint


@router.get("/proofs/inclusion", response_model=InclusionProof, responses=ERRORS)
def inclusion(auditor: Auditor, services: ServicesDep, index: Size, tree_size: Size, min_position: ViewsAt = None) -> dict[str, Any]:
    """RFC 9162 §2.1.3 inclusion proof of leaf ``index`` in the tree of ``tree_size`` leaves."""
    return services.views.inclusion_proof(index, tree_size)


@router.get("/proofs/consistency", response_model=ConsistencyProof, responses=ERRORS)
def consistency(auditor: Auditor, services: ServicesDep, first: Size, second: Size, min_position: ViewsAt = None) -> dict[str, Any]:
    """RFC 9162 §2.1.4 consistency proof between tree sizes ``first`` and ``second``."""
    return services.views.consistency_proof(first, second)
