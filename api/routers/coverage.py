"""Exemption coverage per proof category (API.md §6): the numbers the province defends."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import MinPosition, PrincipalDep, ServicesDep, require_known_category, wait_for_views
from api.problems import problem_responses
from api.schemas import Coverage
from domain.identifiers import validate_region

router = APIRouter(tags=["coverage"])


@router.get("/v1/coverage", response_model=Coverage, responses=problem_responses("unauthenticated", "validation_error", "not_caught_up"))
def coverage(
    principal: PrincipalDep,
    services: ServicesDep,
    category: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=16, description="6-digit region code of the approvers")] = None,
    min_position: MinPosition = None,
) -> dict[str, Any]:
    """Exemption coverage per proof category, optionally for one category or the approvers of one region."""
    require_known_category(services, category)
    if region is not None:
        validate_region(region)
    wait_for_views(services, min_position)
    return services.views.coverage(category=category, region=region)
