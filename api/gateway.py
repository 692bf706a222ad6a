"""The ASGI gateway in front of every route: authentication (failures rate-limited per client address,
see `api.ratelimit`), the body size limit, idempotency, security headers, metrics and one JSON
access-log line per request.

It runs before FastAPI parses anything, so the contract's order of failures holds: 401 (headers
only), then 413 (at most 64 KiB of the body read), then what the handlers decide.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from anyio import to_thread
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.idempotency import request_fingerprint, valid_key
from api.metrics import Metrics
from api.principal import Principal, authenticate, bearer_token
from api.problems import problem_response
from api.ratelimit import AuthFailureLimiter
from store.database import STORE_ERRORS
from store.idempotency import IdempotencyStore, StoredResponse

BODY_LIMIT = 64 * 1024
UNSETTLED_LIMIT = 10_000
PUBLIC_PATHS = frozenset({"/v1/trust/root", "/v1/trust/crl", "/v1/log/checkpoint", "/v1/log/vkey"})
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
        metrics: Metrics,
        limiter: AuthFailureLimiter | None = None,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.authenticator = authenticator
        self.idempotency = idempotency
        self.metrics = metrics
        self.limiter = limiter or AuthFailureLimiter()
        # Idempotency keys whose row could not be settled because the database was down (bounded).
        self._unsettled: dict[tuple[str, str, str], None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 500}
        is_api = scope["path"].startswith("/v1")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["started"] = True
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS + (API_ONLY_HEADERS if is_api else [])
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
                principal = await to_thread.run_sync(self.authenticator, token) if token else None
            except STORE_ERRORS as error:
                await _unavailable(scope, receive, send, error)
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
                await self._idempotent(scope, replay, send, idempotency_scope(principal), key, body)
                return
        await self.app(scope, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > BODY_LIMIT:
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

    async def _idempotent(
        self, scope: Scope, receive: Receive, send: Send, principal: str, key: str, body: bytes
    ) -> None:
        path = scope["path"]
        ident = (principal, path, key)
        try:
            if ident in self._unsettled:  # its first attempt here ended long ago: take the key over now
                await to_thread.run_sync(self.idempotency.release, principal, path, key)
                self._unsettled.pop(ident, None)
            outcome = await to_thread.run_sync(
                self.idempotency.begin, principal, path, key, request_fingerprint(body)
            )
        except STORE_ERRORS as error:
            await _unavailable(scope, receive, send, error)
            return
        if outcome.action == "mismatch":
            response = problem_response("idempotency_mismatch", "this Idempotency-Key was used with a different body")
            await response(scope, receive, send)
            return
        if outcome.action == "in_progress":
            response = problem_response("idempotency_in_progress", "a request with this Idempotency-Key is in progress")
            await response(scope, receive, send)
            return
        if outcome.action == "replay":
            assert outcome.response is not None
            await _send_stored(outcome.response, send)
            return

        captured: dict[str, Any] = {"status": 500, "headers": {}, "body": []}
        held: list[Message] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = {
                    k.decode("latin-1"): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                    if k in (b"content-type", b"x-event-position", b"location")
                }
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            held.append(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await self._settle(scope, ident, None)
            raise
        stored = StoredResponse(captured["status"], b"".join(captured["body"]), captured["headers"])
        if stored.status >= 500:  # not kept, so nothing to wait for: answer, then forget the key
            for message in held:
                await send(message)
            await self._settle(scope, ident, None)
            return
        # Sent only once stored: a repeat that follows this answer is replayed, never 409 in_progress.
        await self._settle(scope, ident, stored)
        for message in held:
            await send(message)

    async def _settle(self, scope: Scope, ident: tuple[str, str, str], stored: StoredResponse | None) -> None:
        """Keeps the answer of an idempotent request (``stored``), or forgets its key (None)."""
        principal, path, key = ident
        try:
            if stored is not None:
                await to_thread.run_sync(self.idempotency.complete, principal, path, key, stored)
            else:
                await to_thread.run_sync(self.idempotency.release, principal, path, key)
        except STORE_ERRORS as error:
            # The answer goes out all the same; the key's row is left in_progress. A retry with this
            # key in this process takes it over at once instead of answering 409 for STALE_AFTER_SECONDS.
            LOG.warning("idempotency key of %s %s left unsettled: %s", scope["method"], path, error)
            self._unsettled[ident] = None
            while len(self._unsettled) > UNSETTLED_LIMIT:
                self._unsettled.pop(next(iter(self._unsettled)))

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        template = _route_template(scope, self.routes)
        principal = scope.get("nocert.principal")
        labels = (scope["method"], template, str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(seconds)
        ACCESS_LOG.info(
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 2),
                    "principal": principal.id if principal else None,
                },
                ensure_ascii=False,
            )
        )


def idempotency_scope(principal: Principal) -> str:
    """Whose idempotency keys these are. The operator and departments are told apart by kind, not by
    name alone: ``admin`` is also a valid department id, and must never be replayed the operator's answers."""
    return "operator" if principal.is_admin else f"department:{principal.id}"


def _route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route the request names, also when the gateway answered before the
    router ran (401, 413, idempotency replays): metrics and logs group by it, and never show ids."""
    route = scope.get("route")
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
    return getattr(route, "path", None) or "(unmatched)"


async def _unavailable(scope: Scope, receive: Receive, send: Send, error: BaseException) -> None:
    """503 ``unavailable`` when the store fails before a route runs: logged like the routes' own (api.app),
    the cause in the log only."""
    LOG.error("store unavailable on %s %s: %s", scope["method"], scope["path"], error)
    detail = "the event store is unavailable; retry later"
    await problem_response("unavailable", detail, headers={"Retry-After": "1"})(scope, receive, send)


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


async def _send_stored(stored: StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers.items()]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


def build_authenticator(app: Any, admin_key: str | None) -> Authenticator:
    def authenticate_token(token: str) -> Principal | None:
        return authenticate(app, admin_key, token)

    return authenticate_token


__all__ = ["Gateway", "build_authenticator", "BODY_LIMIT"]
