"""RFC 9457 problem details with the contract's stable codes (API.md §9), mapped in one place."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

LOG = logging.getLogger("nocert.api")

STATUS_OF_CODE: dict[str, int] = {
    "malformed_json": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "invalid_transition": 409,
    "concurrent_update": 409,
    "idempotency_in_progress": 409,
    "no_signing_key": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "invalid_id_number": 422,
    "invalid_uscc": 422,
    "invalid_claims": 422,
    "unknown_category": 422,
    "category_unavailable": 422,
    "no_route": 422,
    "ambiguous_route": 422,
    "invalid_issuer": 422,
    "idempotency_mismatch": 422,
    "too_many_requests": 429,
    "internal_error": 500,
    "not_caught_up": 503,
    "unavailable": 503,
}

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answer raised from anywhere in the HTTP layer."""

    def __init__(self, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS_OF_CODE[self.code]


def problem_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    status = STATUS_OF_CODE[code]
    return {
        "type": f"https://nocert.example/problems/{code.replace('_', '-')}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(
        problem_body(code, detail, **extra),
        status_code=STATUS_OF_CODE[code],
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error codes an endpoint can answer."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(STATUS_OF_CODE[code], []).append(code)
    return {
        status: {
            "description": f"{HTTPStatus(status).phrase}: code {' | '.join(found)}",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "x-problem-codes": found,  # completed by `api.openapi` with the codes every such operation can answer
        }
        for status, found in sorted(by_status.items())
    }


async def store_unavailable(scope: Scope, receive: Receive, send: Send, error: BaseException) -> None:
    """503 ``unavailable`` when the store fails before a route runs: logged like the routes' own (api.app),
    the cause in the log only."""
    LOG.error("store unavailable on %s %s: %s", scope["method"], scope["path"], error)
    detail = "the event store is unavailable; retry later"
    await problem_response("unavailable", detail, headers={"Retry-After": "1"})(scope, receive, send)
