"""The OpenAPI description (/openapi.json), good enough for client generators (openapi-python-client,
openapi-typescript) and people alike.

FastAPI's generated document is completed here, in one place, from what the service really does:

- short, stable ``operationId``s (``raise_check``, ``accept_check``, ``get_coverage`` ...);
- the ``Idempotency-Key`` header on every ``POST`` (API.md §1) and ``X-Event-Position`` on every command answer;
- every problem code each status can carry: those the route declares (`api.problems.problem_responses`) and
  those the gateway, body parsing, role checks, ``min_position`` and the store add to every such operation;
- ``format: uuid`` on check and proof ids in paths, a schema for every text answer, an example for every body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from api.deps import RoleCheck
from api.examples import EXAMPLES
from api.gateway import PUBLIC_PATHS
from api.problems import PROBLEM_MEDIA_TYPE, STATUS_OF_CODE
from api.schemas import (
    CategoryCreate,
    CategoryPatch,
    CheckCreate,
    Close,
    Decline,
    DepartmentCreate,
    DepartmentPatch,
    Empty,
    Forward,
    InfoRequest,
    InfoSupply,
    KeyRevocation,
    OfficerCreate,
    ProofRevocation,
    Reply,
    SubscriptionCreate,
    Urge,
    VerifyRequest,
    Withdraw,
)
from api.schemas import Problem as ProblemModel
from api.subject_schemas import SubjectErase, SubjectQuery

# The body models handlers read themselves (`api.body.read_body`), documented as components.
BODY_MODELS: tuple[type[BaseModel], ...] = (
    DepartmentCreate, DepartmentPatch, OfficerCreate, KeyRevocation, CategoryCreate, CategoryPatch, CheckCreate, InfoRequest, InfoSupply,
    Forward, Reply, Decline, Withdraw, Close, Empty, ProofRevocation, VerifyRequest, Urge, SubscriptionCreate,
    SubjectQuery, SubjectErase,
)

OPERATION_IDS: dict[tuple[str, str], str] = {
    ("post", "/v1/departments"): "create_department",
    ("get", "/v1/departments"): "list_departments",
    ("patch", "/v1/departments/{department_id}"): "change_department",
    ("post", "/v1/departments/{department_id}/api-keys"): "issue_api_key",
    ("delete", "/v1/departments/{department_id}/api-keys/{api_key_id}"): "revoke_api_key",
    ("post", "/v1/departments/{department_id}/keys"): "rotate_seal_key",
    ("post", "/v1/departments/{department_id}/keys/{kid}/revoke"): "revoke_seal_key",
    ("post", "/v1/categories"): "create_category",
    ("get", "/v1/categories"): "list_categories",
    ("patch", "/v1/categories/{code}"): "change_category",
    ("post", "/v1/checks"): "raise_check",
    ("get", "/v1/checks"): "list_checks",
    ("get", "/v1/inbox"): "get_inbox",
    ("get", "/v1/checks/{check_id}"): "get_check",
    ("get", "/v1/checks/{check_id}/history"): "get_check_history",
    ("post", "/v1/checks/{check_id}/accept"): "accept_check",
    ("post", "/v1/checks/{check_id}/request-info"): "request_info",
    ("post", "/v1/checks/{check_id}/supply-info"): "supply_info",
    ("post", "/v1/checks/{check_id}/forward"): "forward_check",
    ("post", "/v1/checks/{check_id}/reply"): "reply_check",
    ("post", "/v1/checks/{check_id}/decline"): "decline_check",
    ("post", "/v1/checks/{check_id}/withdraw"): "withdraw_check",
    ("post", "/v1/checks/{check_id}/close"): "close_check",
    ("post", "/v1/proofs/verify"): "verify_proof",
    ("get", "/v1/proofs/{proof_id}"): "get_proof",
    ("post", "/v1/proofs/{proof_id}/revoke"): "revoke_proof",
    ("get", "/v1/trust/root"): "get_trust_root",
    ("get", "/v1/trust/crl"): "get_trust_crl",
    ("get", "/v1/log/checkpoint"): "get_log_checkpoint",
    ("get", "/v1/log/vkey"): "get_log_vkey",
    ("get", "/v1/coverage"): "get_coverage",
    ("get", "/v1/audit/events"): "list_audit_events",
    ("get", "/v1/audit/checkpoints/latest"): "get_latest_checkpoint",
    ("get", "/v1/audit/checkpoints"): "get_checkpoint",
    ("get", "/v1/audit/proofs/inclusion"): "get_inclusion_proof",
    ("get", "/v1/audit/proofs/consistency"): "get_consistency_proof",
    ("get", "/healthz"): "get_health",
    ("get", "/readyz"): "get_readiness",
    ("get", "/metrics"): "get_metrics",
    ("post", "/v1/checks/{check_id}/urge"): "urge_check",
    ("get", "/v1/feed"): "get_feed",
    ("post", "/v1/subscriptions"): "create_subscription",
    ("get", "/v1/subscriptions"): "list_subscriptions",
    ("get", "/v1/subscriptions/{subscription_id}"): "get_subscription",
    ("delete", "/v1/subscriptions/{subscription_id}"): "delete_subscription",
    ("post", "/v1/subscriptions/{subscription_id}/resume"): "resume_subscription",
    ("get", "/v1/subscriptions/{subscription_id}/deliveries"): "list_deliveries",
    ("get", "/v1/trust/webhook-key"): "get_webhook_key",
}

#: Operations that record no event, although they are POSTs.
QUERIES = frozenset({"verify_proof", "subject_accesses"})
# The public answers made from keys the process holds, without the store: the only /v1 operations that cannot
# be `unavailable` (the CRL and the checkpoint note read the store, and answer 503 while it is down).
KEY_ANSWERS = frozenset({"/v1/trust/root", "/v1/trust/webhook-key", "/v1/log/vkey"})
#: Answers that are text, not JSON: their media types (the first one is what the service sends by default).
TEXT_ANSWERS: dict[str, tuple[str, ...]] = {
    "get_trust_root": ("application/x-pem-file", "text/plain"),
    "get_metrics": (CONTENT_TYPE_LATEST,),
    "get_log_checkpoint": ("text/plain; charset=utf-8",),
    "get_log_vkey": ("text/plain; charset=utf-8",),
}
#: Answers that are binary files: their media types.
BINARY_ANSWERS: dict[str, str] = {"get_trust_crl": "application/pkix-crl"}
#: Path parameters that are UUIDs (API.md §1: ids of checks and proofs).
UUID_PARAMETERS = frozenset({"check_id", "proof_id", "subscription_id"})
TIME_PARAMETERS = frozenset({"as_of"})

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1-255 printable ASCII characters. A repeat with the same key and a JSON-equal body answers the "
    "first answer again (status, body and X-Event-Position) and changes nothing (API.md §1).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
X_OFFICER = {
    "name": "X-Officer",
    "in": "header",
    "required": False,
    "description": "The login of the department's active officer acting for it; recorded as `officer` on the "
    "command's events (API.md §12). Not an active officer of the caller: 422 invalid_officer.",
    "schema": {"type": "string", "minLength": 3, "maxLength": 64, "pattern": "^[a-z0-9._-]+$"},
}
# The commands a department may give for a named officer (API.md §12): those on checks and proofs.
OFFICER_PATHS = ("/v1/checks", "/v1/proofs/{proof_id}/revoke")
EVENT_POSITION = {
    "description": "The global position of the last event the command recorded; pass it as ?min_position= to "
    "read your writes.",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Always Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": RETRY_AFTER},
}


def build_openapi(app: FastAPI, routes: Iterable[Any]) -> dict[str, Any]:
    """The completed description of ``app``, whose API routes are ``routes`` (cached on the app, as FastAPI does)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, servers=app.servers
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models: tuple[type[BaseModel], ...] = (*BODY_MODELS, ProblemModel)
    for model in models:
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definition.pop("$defs", {}))
        components[model.__name__] = definition
    for model in BODY_MODELS:
        _defaults_described(components[model.__name__])
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    schema["security"] = [{"bearer": []}]
    by_operation = _routes(routes)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            route = by_operation.get((method, path))
            operation["operationId"] = OPERATION_IDS.get((method, path)) or (route.name if route else operation["operationId"])
            _complete(path, method, operation, route)
    app.openapi_schema = schema
    return schema


def _defaults_described(definition: dict[str, Any]) -> None:
    """A request field the service defaults is optional, and said so in words: generators that read ``default``
    as "always present" (openapi-typescript) would otherwise require it from every caller."""
    for prop in definition.get("properties", {}).values():
        if "default" in prop:
            default = prop.pop("default")
            if default is not None:
                prop["description"] = f"{prop.get('description', '')} Default: {json.dumps(default)}.".strip()


def _routes(routes: Iterable[Any]) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                found[(method.lower(), route.path_format)] = route
    return found


def _complete(path: str, method: str, operation: dict[str, Any], route: APIRoute | None) -> None:
    if not operation.get("description"):
        operation["description"] = operation.get("summary", "")
    api = path.startswith("/v1") and path not in PUBLIC_PATHS
    if not api:
        operation["security"] = []
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter["in"] == "path" and parameter["name"] in UUID_PARAMETERS:
            parameter["schema"] = {"type": "string", "format": "uuid", "title": parameter["schema"].get("title", "")}
        if parameter["in"] == "query" and parameter["name"] in TIME_PARAMETERS:
            parameter["schema"] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    if api and method == "post":
        parameters.append(dict(IDEMPOTENCY_KEY))
        if path.startswith(OFFICER_PATHS) and operation["operationId"] not in QUERIES:
            parameters.append(dict(X_OFFICER))
    if not parameters:
        del operation["parameters"]
    body = operation.get("requestBody")
    if body is not None:
        media = body["content"]["application/json"]
        name = media["schema"].get("$ref", "").rpartition("/")[2]
        if name in EXAMPLES:
            media["example"] = EXAMPLES[name]
    command = api and method in ("post", "patch", "delete") and operation["operationId"] not in QUERIES
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, answer in responses.items():
        if command and status.startswith("2"):
            answer.setdefault("headers", {})["X-Event-Position"] = EVENT_POSITION
    text = TEXT_ANSWERS.get(operation["operationId"])
    if text:
        responses["200"]["content"] = {media_type: {"schema": {"type": "string"}} for media_type in text}
    binary = BINARY_ANSWERS.get(operation["operationId"])
    if binary:
        responses["200"]["content"] = {binary: {"schema": {"type": "string", "format": "binary"}}}
    codes = _problem_codes(path, method, operation, route, api, command)
    for status in [key for key in responses if key.startswith(("4", "5"))]:
        if int(status) not in codes:
            del responses[status]  # FastAPI's own 422 for an operation that cannot answer it
    for code_status, found in sorted(codes.items()):
        responses[str(code_status)] = _problem_answer(code_status, found)


def _problem_codes(
    path: str, method: str, operation: dict[str, Any], route: APIRoute | None, api: bool, command: bool
) -> dict[int, list[str]]:
    """Every problem code the operation can answer, by status."""
    codes: list[str] = []
    for status, answer in operation.get("responses", {}).items():
        if status.startswith(("4", "5")):
            codes += answer.get("x-problem-codes", [])
    parameters = operation.get("parameters", [])
    if api:
        codes += ["unauthenticated", "too_many_requests"]
    if path.startswith("/v1") and path not in KEY_ANSWERS:
        codes.append("unavailable")
    if any(parameter["in"] == "query" for parameter in parameters):
        codes.append("validation_error")
    if any(parameter["name"] == "min_position" for parameter in parameters):
        codes.append("not_caught_up")
    if any(parameter["in"] == "path" for parameter in parameters):
        codes.append("not_found")
    if "requestBody" in operation:
        codes += ["malformed_json", "payload_too_large", "unsupported_media_type", "validation_error"]
    if api and method == "post":
        codes += ["idempotency_in_progress", "idempotency_mismatch", "validation_error"]
    if command:
        codes.append("concurrent_update")
    if route is not None and _needs_role(route.dependant):
        codes.append("forbidden")
    by_status: dict[int, list[str]] = {}
    for code in codes:
        found = by_status.setdefault(STATUS_OF_CODE[code], [])
        if code not in found:
            found.append(code)
    return by_status


def _needs_role(dependant: Dependant) -> bool:
    return any(isinstance(sub.call, RoleCheck) or _needs_role(sub) for sub in dependant.dependencies)


def _problem_answer(status: int, codes: list[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    answer: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}: a problem whose code is one of {listed}",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "x-problem-codes": codes,
    }
    headers = ERROR_HEADERS.get(status, {})
    if status == 503 and "unavailable" in codes:
        headers = {"Retry-After": {**RETRY_AFTER, "description": "Sent with `unavailable`"}}
    if headers:
        answer["headers"] = headers
    return answer
