"""The ASGI gateway in front of every route: authentication (failures rate-limited per client address,
see `api.ratelimit`), the body size limit, idempotency, security headers, metrics and one JSON
access-log line per request.

It runs before FastAPI parses anything, so the contract's order of failures holds: 401 (headers
only), then 413 (at most 64 KiB of the body read), then what the handlers decide.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from anyio import to_thread
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.idempotency import commanding, request_fingerprint, valid_key, withhold_secrets
from api.metrics import Metrics
from api.principal import Principal, authenticate, bearer_token
from api.problems import problem_response
from api.ratelimit import AuthFailureLimiter
from store.database import STORE_ERRORS
from store.idempotency import IdempotencyStore, Outcome, Recorded, RecordId, StoredResponse, UnreadableRecord

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
# Renders the answer of a command recorded but never answered: (principal, path, status, what it recorded).
Replayer = Callable[[Principal, str, int, Recorded], StoredResponse]


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
        self.idempotency = idempotency
        self.replayer = replayer
        self.metrics = metrics
        self.limiter = limiter or AuthFailureLimiter()
        # Idempotency keys whose row could not be settled because the database was down (bounded).
        self._unsettled: dict[RecordId, None] = {}

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
        record = RecordId(principal, path, key)
        fingerprint = request_fingerprint(body)
        try:
            if record in self._unsettled:  # its first attempt here ended long ago: take the key over now
                await to_thread.run_sync(self.idempotency.release, record)
                self._unsettled.pop(record, None)
            outcome = await to_thread.run_sync(self.idempotency.begin, record, fingerprint)
        except STORE_ERRORS as error:
            await _unavailable(scope, receive, send, error)
            return
        except UnreadableRecord as error:
            LOG.error("%s", error)
            await problem_response("internal_error", "the stored answer of this key is unreadable")(scope, receive, send)
            return
        if outcome.action == "mismatch":
            response = problem_response("idempotency_mismatch", "this Idempotency-Key was used with a different body")
            await response(scope, receive, send)
            return
        if outcome.action == "in_progress":
            response = problem_response("idempotency_in_progress", "a request with this Idempotency-Key is in progress")
            await response(scope, receive, send)
            return
        if outcome.action in ("replay", "recorded"):
            await self._answer_settled(scope, record, outcome, send)
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
            with commanding(record, fingerprint):
                await self.app(scope, receive, capture)
        except Exception:
            # The command may have been recorded before the failure: then its outcome is the answer.
            if await self._answer_recorded_instead(scope, record, send):
                return
            raise
        except BaseException:
            await self._settle(scope, record, None)
            raise
        if captured["status"] >= 500:
            # Not kept. If the command's events were recorded (the failure came after the commit), the
            # recorded outcome is the answer: a recorded command is never answered 5xx (API.md §1).
            if await self._answer_recorded_instead(scope, record, send):
                return
            for message in held:
                await send(message)
            return
        stored = StoredResponse(captured["status"], withhold_secrets(b"".join(captured["body"])), captured["headers"])
        # Sent only once stored: a repeat that follows this answer is replayed, never 409 in_progress.
        await self._settle(scope, record, stored)
        for message in held:
            await send(message)

    async def _answer_settled(self, scope: Scope, record: RecordId, outcome: Outcome, send: Send) -> None:
        """Answers a repeat with the first answer, or with the outcome of a command recorded but not answered."""
        stored = outcome.response
        if stored is None:
            assert outcome.recorded is not None
            stored = await to_thread.run_sync(self._render_recorded, scope, outcome.recorded)
            try:
                await to_thread.run_sync(self.idempotency.complete, record, stored)
            except STORE_ERRORS as error:
                LOG.warning("idempotency answer of %s %s not kept: %s", scope["method"], scope["path"], error)
        await _send_stored(stored, send)

    async def _answer_recorded_instead(self, scope: Scope, record: RecordId, send: Send) -> bool:
        """After a failed request: answers with the recorded outcome if the command's events were recorded
        (True); otherwise forgets the key so that a retry runs the command (False). When the store cannot
        tell, the key is left in progress: a retry here takes it over and finds what was recorded."""
        try:
            outcome = await to_thread.run_sync(self.idempotency.settled, record)
        except STORE_ERRORS as error:
            LOG.warning("outcome of %s %s unconfirmed (key kept): %s", scope["method"], scope["path"], error)
            self._remember_unsettled(record)
            return False
        if outcome is None:
            await self._settle(scope, record, None)
            return False
        LOG.warning("%s %s failed after its events were recorded; answering the recorded outcome",
                    scope["method"], scope["path"])
        await self._answer_settled(scope, record, outcome, send)
        return True

    def _render_recorded(self, scope: Scope, recorded: Recorded) -> StoredResponse:
        route = _route(scope, self.routes)
        status = getattr(route, "status_code", None) or 200
        return self.replayer(scope["nocert.principal"], scope["path"], status, recorded)

    async def _settle(self, scope: Scope, record: RecordId, stored: StoredResponse | None) -> None:
        """Keeps the answer of an idempotent request (``stored``), or forgets its key (None)."""
        try:
            if stored is not None:
                await to_thread.run_sync(self.idempotency.complete, record, stored)
            else:
                await to_thread.run_sync(self.idempotency.release, record)
        except STORE_ERRORS as error:
            # The answer goes out all the same; the key's row is left as it is (committed rows answer
            # repeats from the recorded outcome). A retry with this key in this process takes an
            # in_progress row over at once instead of answering 409 for STALE_AFTER_SECONDS.
            LOG.warning("idempotency key of %s %s left unsettled: %s", scope["method"], scope["path"], error)
            self._remember_unsettled(record)

    def _remember_unsettled(self, record: RecordId) -> None:
        self._unsettled[record] = None
        while len(self._unsettled) > UNSETTLED_LIMIT:
            self._unsettled.pop(next(iter(self._unsettled)))

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        template = _route_template(scope, self.routes)
        principal = scope.get("nocert.principal")
        labels = (scope["method"], template, str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(seconds)
        client = scope.get("client")
        ACCESS_LOG.info(
            json.dumps(
                {
                    "time": access_time(time.time()),
                    "client": client[0] if client else None,
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 2),
                    "principal": principal.id if principal else None,
                    "request_id": scope.get("nocert.request_id"),
                },
                ensure_ascii=False,
            )
        )


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
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((epoch - whole) * 1000):03d}Z"


def idempotency_scope(principal: Principal) -> str:
    """Whose idempotency keys these are. The operator and departments are told apart by kind, not by
    name alone: ``admin`` is also a valid department id, and must never be replayed the operator's answers."""
    return "operator" if principal.is_admin else f"department:{principal.id}"


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
