"""How checks, histories, departments and categories look to each reader (the masking of API.md §4, by
the rules of `api.access`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from api.access import sees_full_numbers, sees_proof_jws
from api.principal import Principal
from domain.category import Category
from domain.check import Check
from domain.department import Department
from domain.privacy import mask_check, mask_claims
from domain.timefmt import format_time
from projections.checks import check_document as check_fields

BOOKKEEPING = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "actor"})


def check_document(
    check: Check, principal: Principal, now: datetime, current: Check | None = None
) -> dict[str, Any]:
    """The check for this reader. For a past version, ``current`` (the check as it is now) decides
    who sees personal data: the approver and the issuer addressed now."""
    rights = current or check
    document = check_fields(check, now)
    if not sees_full_numbers(rights, principal):
        document = mask_check(document)
    if document["proof"] is not None and not sees_proof_jws(rights, principal):
        document["proof"] = {**document["proof"], "jws": None}
    return document


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def history_document(
    check: Check, events: list[Check.Event], positions: dict[int, int], principal: Principal
) -> dict[str, Any]:
    """The check's events in version order, masked for the reader like the check itself."""
    full = sees_full_numbers(check, principal)
    show_jws = sees_proof_jws(check, principal)
    items = []
    for event in events:
        data = {key: _jsonable(value) for key, value in event.__dict__.items() if key not in BOOKKEEPING}
        if not full:
            data = {key: mask_claims(value) if key in ("applicant", "claims") else value for key, value in data.items()}
        if "jws" in data and not show_jws:
            data["jws"] = None
        items.append(
            {
                "position": positions.get(event.originator_version, 0),
                "version": event.originator_version,
                "type": type(event).__name__,
                "at": format_time(event.timestamp),
                "actor": event.actor,
                "data": data,
            }
        )
    return {"check_id": str(check.id), "events": items}


def department_document(department: Department, now: datetime) -> dict[str, Any]:
    """Public data of a department: never its API keys."""
    return {
        "id": department.department_id,
        "name": department.name,
        "uscc": department.uscc,
        "roles": list(department.roles),
        "kind": department.kind,
        "region": department.region,
        "status": department.status,
        "certificates": [
            {
                "kid": seal.kid,
                "certificate_pem": seal.certificate_pem,
                "status": seal.status(now),
                "revoked_at": format_time(seal.revoked_at) if seal.revoked_at else None,
            }
            for seal in department.seals.values()
        ],
    }


def seal_entry(department: Department, kid: str, now: datetime) -> dict[str, Any]:
    return next(item for item in department_document(department, now)["certificates"] if item["kid"] == kid)


def category_document(category: Category) -> dict[str, Any]:
    return {
        "code": category.code,
        "name": category.name,
        "issuer_kind": category.issuer_kind,
        "modes": list(category.modes),
        "sla_hours": category.sla_hours,
        "claims_schema": category.claims_schema,
        "status": category.status,
    }
