"""The ASGI gateway in front of every route: authentication (failures rate-limited per client address,
see `api.ratelimit`), the body size limit, idempotency, security headers, metrics and one JSON
access-log line per request.

It runs before FastAPI parses anything, so the contract's order of failures holds: 401 (headers
only), then 413 (at most 64 KiB of the body read), then what the handlers decide.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring as _encode_text  # a JSON string, non-ASCII as is
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import may_call
from api.idempotency import IdempotentRequests, Replayer, valid_key
from api.metrics import Metrics
from api.offload import in_thread
from api.principal import Principal, authenticate, bearer_token
from api.problems import problem_response, store_unavailable
from api.ratelimit import AuthFailureLimiter
from store.database import STORE_ERRORS
from store.idempotency import IdempotencyStore

BODY_LIMIT = 64 * 1024
PUBLIC_PATHS = frozenset(
    {"/v1/trust/root", "/v1/trust/webhook-key", "/v1/trust/crl", "/v1/log/checkpoint", "/v1/log/vkey"}
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"x-permitted-cross-domain-policies", b"none"),
]
API_ONLY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
ACCESS_LOG = logging.getLogger("nocert.access")
LOG = logging.getLogger("nocert.api")

Authenticator = Callable[[str], Principal | None]



def _too_large(declared: str) -> bool:
    """A Content-Length of ASCII digits above the limit (thousands of digits are not read as a number)."""
    digits = declared.lstrip("0")
    return len(digits) > 12 or int(digits or "0") > BODY_LIMIT


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class _TooLarge(Exception):
    pass


class Gateway:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        idempotency: IdempotencyStore,
        replayer: Replayer,
        metrics: Metrics,
        limiter: AuthFailureLimiter | None = None,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.authenticator = authenticator
        self.idempotent = IdempotentRequests(
            app, idempotency, replayer, lambda scope: getattr(_route(scope, self.routes), "status_code", None) or 200
        )
        self.metrics = metrics
        self.limiter = limiter or AuthFailureLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 500}
        is_api = scope["path"].startswith("/v1")
        request_id = scope["nocert.request_id"] = request_id_of(_header(scope, b"x-request-id"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["started"] = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers += SECURITY_HEADERS + (API_ONLY_HEADERS if is_api else [])
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._handle(scope, receive, send_with_headers)
        except Exception:
            # Answered here rather than by the server's error middleware, so that the answer is a
            # problem with the security headers, logged once, and never shows the exception.
            LOG.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if seen.get("started"):
                raise
            response = problem_response("internal_error", "an internal error occurred; it has been logged")
            await response(scope, receive, send_with_headers)
        finally:
            self._record(scope, seen["status"], time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path.startswith("/v1") and path not in PUBLIC_PATHS:
            token = bearer_token(_header(scope, b"authorization"))
            try:
                principal = await in_thread(self.authenticator, token) if token else None
            except STORE_ERRORS as error:
                await store_unavailable(scope, receive, send, error)
                return
            if principal is None:
                self.metrics.auth_failures.inc()
                wait = self.limiter.record_failure((scope.get("client") or (None,))[0]) if token else 0.0
                if wait:
                    detail = "too many failed authentications from this address; retry later"
                    headers = {"Retry-After": self.limiter.retry_after_header(wait)}
                    await problem_response("too_many_requests", detail, headers=headers)(scope, receive, send)
                    return
                detail = "missing API key" if token is None else "unknown or revoked API key"
                response = problem_response("unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
            if not may_call(principal, method, path):
                await problem_response("forbidden", "this key may not make this call")(scope, receive, send)
                return
            scope["nocert.principal"] = principal

        try:
            body = await self._read_body(scope, receive)
        except _TooLarge:
            response = problem_response("payload_too_large", f"request bodies are limited to {BODY_LIMIT} bytes")
            await response(scope, receive, send)
            return
        scope["nocert.body"] = body
        replay = _replaying(body, receive)

        key = _header(scope, b"idempotency-key")
        principal = scope.get("nocert.principal")
        # A NUL in the path names nothing (every id is validated) and cannot be stored as text by PostgreSQL.
        if method == "POST" and key is not None and principal is not None and "\x00" not in path:
            if not valid_key(key):
                # Refused by ``read_body`` as a validation error, after the role, the visibility and
                # the body's media type and JSON have been judged (the order of API.md §1).
                scope["nocert.invalid_idempotency_key"] = True
            else:
                await self.idempotent(scope, replay, send, principal, key, body)
                return
        await self.app(scope, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and _too_large(declared):
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > BODY_LIMIT:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        template = _route_template(scope, self.routes)
        principal = scope.get("nocert.principal")
        self.metrics.record(scope["method"], template, str(status), seconds)
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            client = scope.get("client")
            line = access_line(
                client[0] if client else None, scope["method"], template, status, seconds,
                principal.id if principal else None, scope.get("nocert.request_id"),
            )
            # ``handle`` rather than ``info``: the line is the whole record, and ``info`` would also walk
            # the stack to find the calling line (``findCaller``), which no handler of this logger shows.
            ACCESS_LOG.handle(ACCESS_LOG.makeRecord(ACCESS_LOG.name, logging.INFO, __file__, 0, line, (), None))


def access_line(
    client: str | None, method: str, route: str, status: int, seconds: float, principal: str | None,
    request_id: str | None,
) -> str:
    """The JSON access-log line, as ``json.dumps`` (``ensure_ascii=False``) writes it, without building a
    dict and an encoder per request."""
    return (
        f'{{"time": "{access_time(time.time())}", "client": {_text(client)}, "method": {_text(method)}, '
        f'"route": {_text(route)}, "status": {status}, "latency_ms": {round(seconds * 1000, 2)!r}, '
        f'"principal": {_text(principal)}, "request_id": {_text(request_id)}}}'
    )


def _text(value: str | None) -> str:
    return "null" if value is None else _encode_text(value)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}", re.ASCII)


def request_id_of(given: str | None) -> str:
    """The request's id: the one the proxy in front sent (``X-Request-Id``: nginx's ``$request_id``) when it
    is a plain token, else a new one. Logged with the request and returned in ``X-Request-Id``."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def access_time(epoch: float) -> str:
    """UTC with milliseconds, e.g. ``2026-12-02T15:04:05.123Z``."""
    whole = int(epoch)
    second = _second_text.get(whole)
    if second is None:  # the first line of this second
        _second_text.clear()
        second = _second_text[whole] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{second}.{int((epoch - whole) * 1000):03d}Z"


_second_text: dict[int, str] = {}


def _route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route the request names, also when the gateway answered before the
    router ran (401, 413, idempotency replays): metrics and logs group by it, and never show ids."""
    return getattr(_route(scope, routes), "path", None) or "(unmatched)"


def _route(scope: Scope, routes: Sequence[BaseRoute]) -> BaseRoute | None:
    """The route the request names (the one whose path matches when only the method does not)."""
    route: BaseRoute | None = scope.get("route")
    if route is None:
        partial = None
        for candidate in routes:
            match, _ = candidate.matches(scope)
            if match == Match.FULL:
                route = candidate
                break
            if match == Match.PARTIAL and partial is None:  # the path matches, the method does not
                partial = candidate
        route = route or partial
    return route


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then defers to the real one."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def build_authenticator(app: Any, admin_key: str | None) -> Authenticator:
    def authenticate_token(token: str) -> Principal | None:
        return authenticate(app, admin_key, token)

    return authenticate_token


__all__ = ["Gateway", "build_authenticator", "BODY_LIMIT"]
