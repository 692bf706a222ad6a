"""Webhook subscriptions (API.md §11): a department subscribes for itself, reads its deliveries, resumes a
failing subscription; the platform's webhook key (``v1a``) is public."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.body import body_route, read_body
from api.deps import Cursor, ServicesDep, parse_uuid
from api.problems import problem_responses
from api.responses import created, ok
from api.routers.feed import DepartmentPrincipal
from api.schemas import SubscriptionCreate
from delivery import outbox
from delivery.address import allowed_prefixes, check_url
from delivery.secrets import new_secret
from domain.subscription import Subscription
from domain.timefmt import format_time
from projections.cursor import decode_cursor, encode_cursor

router = APIRouter(tags=["subscriptions"])
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
READ_ERRORS = problem_responses("unauthenticated", "forbidden", "not_found", "validation_error")


def subscription_document(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": str(subscription.id),
        "url": subscription.url,
        "types": subscription.types,
        "status": subscription.status,
        "created_at": format_time(subscription.created_on),
    }


@body_route(
    router.post, "/v1/subscriptions", SubscriptionCreate,
    "unauthenticated", "forbidden", "validation_error", "invalid_url", "payload_too_large",
    status_code=201,
)
def subscribe(request: Request, department: DepartmentPrincipal, services: ServicesDep) -> JSONResponse:
    """Subscribes the caller to its check events; the secret is shown this once."""
    body = read_body(request, SubscriptionCreate)
    url = check_url(body.url, allowed_prefixes(services.settings.webhook_allow))
    secret = new_secret()
    subscription, position = services.platform.subscribe(
        department.id, url, body.types, services.webhook_keys.seal(secret)
    )
    return created(services, {**subscription_document(subscription), "secret": secret}, position)


@router.get("/v1/subscriptions", responses=READ_ERRORS)
def list_subscriptions(department: DepartmentPrincipal, services: ServicesDep, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    after = decode_cursor("subscriptions", cursor)[0] if cursor is not None else None
    items, last = outbox.list_subscriptions(services.database, department.id, limit, after)
    return {"items": items, "next_cursor": encode_cursor("subscriptions", last) if last is not None else None}


@router.get("/v1/subscriptions/{subscription_id}", responses=READ_ERRORS)
def read_subscription(subscription_id: str, department: DepartmentPrincipal, services: ServicesDep) -> dict[str, Any]:
    found = services.platform.own_subscription(parse_uuid(subscription_id, "subscription"), department.id)
    return subscription_document(found)


@router.delete("/v1/subscriptions/{subscription_id}", status_code=204, responses=READ_ERRORS)
def unsubscribe(subscription_id: str, department: DepartmentPrincipal, services: ServicesDep) -> Response:
    position = services.platform.unsubscribe(parse_uuid(subscription_id, "subscription"), department.id)
    return Response(status_code=204, headers={"X-Event-Position": str(position)})


@router.post("/v1/subscriptions/{subscription_id}/resume", responses=READ_ERRORS)
def resume(subscription_id: str, department: DepartmentPrincipal, services: ServicesDep) -> JSONResponse:
    """A failing subscription is active again; sending resumes from the first undelivered event."""
    subscription, position = services.platform.resume_subscription(parse_uuid(subscription_id, "subscription"), department.id)
    services.webhooks.nudge()
    return ok(services, subscription_document(subscription), position)


@router.get("/v1/subscriptions/{subscription_id}/deliveries", responses=READ_ERRORS)
def deliveries(
    subscription_id: str,
    department: DepartmentPrincipal,
    services: ServicesDep,
    status: Literal["pending", "delivered", "failing"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    found = services.platform.own_subscription(parse_uuid(subscription_id, "subscription"), department.id)
    after = int(decode_cursor("deliveries", cursor)[0]) if cursor is not None else None
    items, last = outbox.list_deliveries(services.database, str(found.id), status, limit, after)
    return {"items": items, "next_cursor": encode_cursor("deliveries", str(last)) if last is not None else None}


@router.get("/v1/trust/webhook-key", tags=["trust"])
def webhook_key(services: ServicesDep) -> dict[str, str]:
    """The platform's Ed25519 webhook key, for ``v1a`` signatures. No authentication."""
    return {"public_key": services.webhook_keys.public_key()}
