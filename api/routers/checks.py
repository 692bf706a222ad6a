"""Checks (协查, API.md §4): raised by approvers, answered by issuers, read by their parties and auditors."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.access import can_read_check, list_scope
from api.body import body_route, read_body
from api.bootstrap import Services
from api.deps import (
    Approver,
    CheckReader,
    Cursor,
    Issuer,
    Limit,
    ServicesDep,
    StoreAt,
    ViewsAt,
    parse_uuid,
    require_known_category,
)
from api.presenters import check_document, history_document
from api.principal import Principal
from api.problems import Problem, problem_responses
from api.responses import created, last_position, ok
from api.schemas import (
    Check as CheckOut,
)
from api.schemas import (
    CheckCreate,
    CheckPage,
    Close,
    Decline,
    Empty,
    Forward,
    History,
    InfoRequest,
    InfoSupply,
    Reply,
    Urge,
    Withdraw,
)
from domain.check import Check
from domain.errors import DomainError
from domain.timefmt import parse_time
from domain.vocabulary import CheckStatus

router = APIRouter(tags=["checks"])
Handler = Callable[..., JSONResponse]

COMMAND_CODES = (
    "unauthenticated", "forbidden", "not_found", "unsupported_media_type", "malformed_json",
    "validation_error", "invalid_transition", "concurrent_update", "idempotency_in_progress",
    "idempotency_mismatch", "payload_too_large", "invalid_officer",
)


VERSION = re.compile(r"[1-9][0-9]{0,17}", re.ASCII)  # a positive integer that fits a version (below 10**18)


def parse_version(text: str) -> int:
    """``?version=N``: ASCII digits only (``²`` is a digit to ``str.isdigit``), not thousands of them."""
    if not VERSION.fullmatch(text):
        raise Problem("validation_error", "version must be a positive integer")
    return int(text)


class _Attempt:
    """A command's first attempt may act on the check as this process last saw it (no query); whether it did."""

    def __init__(self) -> None:
        self.cached = False


_attempt: ContextVar[_Attempt | None] = ContextVar("check_command_attempt", default=None)


def visible_check(services: Services, check_id: str, principal: Principal) -> Check:
    """The check if the caller may read it; 404 otherwise, so that existence does not leak."""
    uuid = parse_uuid(check_id, "check")
    attempt = _attempt.get()
    check = services.platform.cached_check(uuid) if attempt is not None else None
    if check is not None and attempt is not None:
        attempt.cached = True
    else:
        check = services.platform.check(uuid)
    if not can_read_check(check, principal):
        raise Problem("not_found", "check not found")
    return check


def cached_first(handler: Handler) -> Handler:
    """Runs a check command on the cached check first (`Platform.cached_check`), and once more on a fresh
    read if that attempt was refused for any reason: a stale copy (another process moved the check) makes
    the save fail as a conflict, or the command fail on state that is no longer current, and is never
    recorded; the fresh attempt decides as if there were no cache."""

    @wraps(handler)
    def run(*args: Any, **kwargs: Any) -> JSONResponse:
        attempt = _Attempt()
        token = _attempt.set(attempt)
        try:
            return handler(*args, **kwargs)
        except (Problem, DomainError):
            if not attempt.cached:
                raise
        finally:
            _attempt.reset(token)
        return handler(*args, **kwargs)

    return run


def answer(services: Services, check: Check, principal: Principal, position: int) -> JSONResponse:
    return ok(services, check_document(check, principal, services.platform.clock()), position)


def raise_from(
    services: Services, approver: Principal, body: CheckCreate, idempotency_key: str | None
) -> tuple[Check, int | None]:
    """The platform's raise for a validated body, by the approver and its officer (the API's and the pages')."""
    return services.platform.raise_check(
        approver.id,
        category=body.category,
        matter=body.matter.model_dump(),
        applicant=body.applicant.model_dump(),
        claims=body.claims,
        purpose=body.purpose,
        consent=body.consent.model_dump(),
        issuer=body.issuer,
        idempotency_key=idempotency_key,
        officer=approver.officer,
    )


@body_route(
    router.post, "/v1/checks", CheckCreate,
    "unauthenticated", "forbidden", "validation_error", "invalid_id_number", "invalid_claims",
    "unknown_category", "category_unavailable", "no_route", "ambiguous_route", "invalid_issuer",
    "idempotency_mismatch", "idempotency_in_progress", "payload_too_large",
    status_code=201, response_model=CheckOut,
)
def raise_check(request: Request, approver: Approver, services: ServicesDep) -> JSONResponse:
    """Raises a check with the issuer named, or routed by the applicant's region."""
    body = read_body(request, CheckCreate)
    check, position = raise_from(services, approver, body, request.headers.get("idempotency-key"))
    if position is None:  # an earlier request with this key raised it
        position = last_position(services, check.id)
    return created(services, check_document(check, approver, services.platform.clock()), position)


@router.get("/v1/checks", response_model=CheckPage, responses=problem_responses("unauthenticated", "forbidden", "validation_error", "not_caught_up"))
def list_checks(
    principal: CheckReader,
    services: ServicesDep,
    status: CheckStatus | None = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: ViewsAt = None,
) -> dict[str, Any]:
    """Approvers see the checks they raised, issuers those addressed to them now, auditors all."""
    require_known_category(services, category)
    items, next_cursor = services.views.list_checks(
        **list_scope(principal),
        status=status.value if status is not None else None,
        category=category,
        overdue=overdue,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/inbox", response_model=CheckPage, responses=problem_responses("unauthenticated", "forbidden", "validation_error", "not_caught_up"))
def inbox(
    issuer: Issuer, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None, min_position: ViewsAt = None
) -> dict[str, Any]:
    """Checks addressed to the caller in raised, accepted or info_requested, most urgent first."""
    items, next_cursor = services.views.inbox(issuer.id, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/v1/checks/{check_id}",
    response_model=CheckOut,
    responses=problem_responses("unauthenticated", "forbidden", "not_found", "validation_error", "not_caught_up"),
)
def read_check(
    check_id: str,
    principal: CheckReader,
    services: ServicesDep,
    version: Annotated[str | None, Query(description="The check as it was after its N-th event")] = None,
    as_of: Annotated[str | None, Query(description="The check as it was at this RFC 3339 time")] = None,
    min_position: StoreAt = None,
) -> dict[str, Any]:
    """The check as the caller may see it (personal data masked for readers other than its approver and current issuer); `version` or `as_of` give a past state."""
    current = visible_check(services, check_id, principal)
    if version is not None and as_of is not None:
        raise Problem("validation_error", "give version or as_of, not both")
    check = current
    if version is not None:
        number = parse_version(version)
        if number > current.version:
            raise Problem("not_found", f"the check has {current.version} versions")
        check = services.platform.check(current.id, number)
    elif as_of is not None:
        try:
            moment = parse_time(as_of)
        except ValueError:
            raise Problem("validation_error", "as_of must be an RFC 3339 time") from None
        check = services.platform.check_as_of(current.id, moment)
    return check_document(check, principal, services.platform.clock(), current)


@router.get(
    "/v1/checks/{check_id}/history",
    response_model=History,
    responses=problem_responses("unauthenticated", "forbidden", "not_found", "not_caught_up"),
)
def check_history(check_id: str, principal: CheckReader, services: ServicesDep, min_position: StoreAt = None) -> dict[str, Any]:
    """Every event of the check in version order, masked for the reader like the check itself."""
    check = visible_check(services, check_id, principal)
    events = services.platform.check_events(check.id)
    positions = services.log.stream_positions(check.id)
    return history_document(check, events, positions, principal)


def _command(path: str, model: type[BaseModel], summary: str, *codes: str) -> Callable[[Handler], Handler]:
    """A check command; ``codes``: the problems it can answer besides those of every command."""
    route: Callable[[Handler], Handler] = body_route(
        router.post, path, model, *COMMAND_CODES, *codes, response_model=CheckOut, summary=summary
    )
    return lambda handler: route(cached_first(handler))


@_command("/v1/checks/{check_id}/accept", Empty, "The addressed issuer accepts the check")
def accept(check_id: str, request: Request, issuer: Issuer, services: ServicesDep) -> JSONResponse:
    """The addressed issuer accepts a raised check."""
    check = visible_check(services, check_id, issuer)
    read_body(request, Empty)
    check, position = services.platform.accept(check, issuer.id, issuer.officer)
    return answer(services, check, issuer, position)


@_command("/v1/checks/{check_id}/request-info", InfoRequest, "The addressed issuer asks the approver a question")
def request_info(check_id: str, request: Request, issuer: Issuer, services: ServicesDep) -> JSONResponse:
    """The addressed issuer asks the approver a question about an accepted check."""
    check = visible_check(services, check_id, issuer)
    body = read_body(request, InfoRequest)
    check, position = services.platform.request_info(check, issuer.id, body.question, issuer.officer)
    return answer(services, check, issuer, position)


@_command("/v1/checks/{check_id}/supply-info", InfoSupply, "The approver answers the issuer's question")
def supply_info(check_id: str, request: Request, approver: Approver, services: ServicesDep) -> JSONResponse:
    """The approver answers the issuer's open question; the check is accepted again."""
    check = visible_check(services, check_id, approver)
    body = read_body(request, InfoSupply)
    check, position = services.platform.supply_info(check, approver.id, body.answer, approver.officer)
    return answer(services, check, approver, position)


@_command("/v1/checks/{check_id}/forward", Forward, "The addressed issuer forwards the check to another issuer", "invalid_issuer")
def forward(check_id: str, request: Request, issuer: Issuer, services: ServicesDep) -> JSONResponse:
    """The addressed issuer hands the check to another issuer of the category's kind; the due time restarts."""
    check = visible_check(services, check_id, issuer)
    body = read_body(request, Forward)
    check, position = services.platform.forward(check, issuer.id, body.to, body.reason, issuer.officer)
    return answer(services, check, issuer, position)


@_command("/v1/checks/{check_id}/reply", Reply, "The addressed issuer answers with a sealed proof", "no_signing_key")
def reply(check_id: str, request: Request, issuer: Issuer, services: ServicesDep) -> JSONResponse:
    """The addressed issuer answers: the platform seals a proof with the issuer's current key."""
    check = visible_check(services, check_id, issuer)
    body = read_body(request, Reply)
    check, position = services.platform.reply(
        check, issuer.id, body.conclusion, body.statements, body.valid_days, issuer.officer
    )
    return answer(services, check, issuer, position)


@_command("/v1/checks/{check_id}/decline", Decline, "The addressed issuer declines the check")
def decline(check_id: str, request: Request, issuer: Issuer, services: ServicesDep) -> JSONResponse:
    """The addressed issuer declines the check with a reason code."""
    check = visible_check(services, check_id, issuer)
    body = read_body(request, Decline)
    check, position = services.platform.decline(check, issuer.id, body.reason_code, body.note, issuer.officer)
    return answer(services, check, issuer, position)


@_command("/v1/checks/{check_id}/withdraw", Withdraw, "The approver withdraws the check")
def withdraw(check_id: str, request: Request, approver: Approver, services: ServicesDep) -> JSONResponse:
    """The approver withdraws a check that is not answered yet."""
    check = visible_check(services, check_id, approver)
    body = read_body(request, Withdraw)
    check, position = services.platform.withdraw(check, approver.id, body.reason, approver.officer)
    return answer(services, check, approver, position)


@_command("/v1/checks/{check_id}/close", Close, "The approver closes the check with its outcome")
def close(check_id: str, request: Request, approver: Approver, services: ServicesDep) -> JSONResponse:
    """The approver closes the check with its outcome (exempted needs a confirmed reply with a proof valid now)."""
    check = visible_check(services, check_id, approver)
    body = read_body(request, Close)
    check, position = services.platform.close_check(check, approver.id, body.outcome, approver.officer)
    return answer(services, check, approver, position)



@_command("/v1/checks/{check_id}/urge", Urge, "The approver urges the issuer to answer (督办)")
def urge(check_id: str, request: Request, approver: Approver, services: ServicesDep) -> JSONResponse:
    check = visible_check(services, check_id, approver)
    body = read_body(request, Urge)
    check, position = services.platform.urge(check, approver.id, body.note, approver.officer)
    return answer(services, check, approver, position)
