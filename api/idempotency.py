"""The HTTP side of idempotency keys (API.md §1): which keys are valid, when two bodies are the same
request, how the command's events carry the key's record, what a stored answer may keep, and how a
command that was recorded but never answered is answered again. The records themselves are kept by
`store.idempotency`."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import rfc8785
from anyio import to_thread
from eventsourcing.domain import Aggregate
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.presenters import check_document
from api.principal import Principal
from api.problems import problem_response, store_unavailable
from domain.check import Check
from store.database import STORE_ERRORS
from store.idempotency import (
    CommittedAttachment,
    IdempotencyStore,
    Outcome,
    Recorded,
    RecordId,
    StoredResponse,
    UnreadableRecord,
)

if TYPE_CHECKING:
    from api.bootstrap import Services

# Fields of an answer that are shown once (API keys, webhook secrets, enrolment codes): never kept.
SECRET_FIELDS = ("api_key", "secret", "enrolment_code")


def request_fingerprint(body: bytes) -> str:
    """SHA-256 of the body's RFC 8785 form, so JSON-equal bodies match; raw bytes otherwise."""
    try:
        canonical = rfc8785.dumps(json.loads(body)) if body.strip() else b"{}"
    except (ValueError, rfc8785.CanonicalizationError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def valid_key(key: str) -> bool:
    """1-255 printable ASCII characters (0x20-0x7E; HTTP trims spaces at either end)."""
    return 1 <= len(key) <= 255 and all(0x20 <= ord(c) <= 0x7E for c in key)


# -- the record travels with the command's events ---------------------------------------------------


@dataclass(frozen=True)
class Intent:
    record: RecordId
    fingerprint: str


_intent: ContextVar[Intent | None] = ContextVar("nocert_idempotency_intent", default=None)


@contextmanager
def commanding(record: RecordId, fingerprint: str) -> Iterator[None]:
    """While the request runs, every save it makes marks its record ``committed`` in the same transaction
    (the handlers run in worker threads, which copy this context)."""
    token = _intent.set(Intent(record, fingerprint))
    try:
        yield
    finally:
        _intent.reset(token)


def record_committed(aggregates: Sequence[Aggregate], events: Sequence[Any]) -> Iterable[CommittedAttachment]:
    """The platform's save hook: the attachment that records the running request's key as committed."""
    intent = _intent.get()
    if intent is None or not events:
        return ()
    subject = next((a for a in aggregates if isinstance(a, Check)), aggregates[0] if aggregates else None)
    stream = str(subject.id) if subject is not None else None
    version = subject.version if subject is not None else None
    return (CommittedAttachment(intent.record, intent.fingerprint, stream, version),)


# -- what is kept, and what a replay shows ------------------------------------------------------------


def withhold_secrets(body: bytes) -> bytes:
    """The answer as it may be kept: secrets shown once are replaced by null and named in ``withheld``."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    withheld = [name for name in SECRET_FIELDS if document.get(name) is not None]
    if not withheld:
        return body
    for name in withheld:
        document[name] = None
    document["withheld"] = withheld
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def render_recorded(
    services: Services, principal: Principal, path: str, status: int, recorded: Recorded
) -> StoredResponse:
    """The answer to a repeat of a command whose events were recorded but whose answer was not kept.

    A check command answers with the check as it was after the command (as `GET /v1/checks/{id}?version=`
    shows it to the caller); any other command with the position of its last event, and says so."""
    headers = {"content-type": "application/json", "x-event-position": str(recorded.position)}
    if path.startswith("/v1/checks") and recorded.stream and recorded.version:
        current = services.platform.check(UUID(recorded.stream))
        check = services.platform.check(current.id, recorded.version)
        document: Any = check_document(check, principal, services.platform.clock(), current)
    else:
        document = {
            "position": recorded.position,
            "detail": "this command was recorded (its last event is at this position); its answer was not "
            "kept, so this repeat gives the position only",
        }
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return StoredResponse(status, body, headers)


# -- requests with an Idempotency-Key, as the gateway hands them over ------------------------------

UNSETTLED_LIMIT = 10_000
LOG = logging.getLogger("nocert.api")
# Renders the answer of a command recorded but never answered: (principal, path, status, what it recorded).
Replayer = Callable[[Principal, str, int, Recorded], StoredResponse]


class IdempotentRequests:
    """Runs a request that carries a valid Idempotency-Key (API.md §1): a repeat gets the first answer, or
    the outcome its command recorded; a first request runs with its record travelling with its events."""

    def __init__(
        self, app: ASGIApp, store: IdempotencyStore, replayer: Replayer, status_of: Callable[[Scope], int]
    ) -> None:
        self.app = app
        self.idempotency = store
        self.replayer = replayer
        self.status_of = status_of  # the status a route answers on success (a replay's, when not kept)
        # Idempotency keys whose row could not be settled because the database was down (bounded).
        self._unsettled: dict[RecordId, None] = {}

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, key: str, body: bytes
    ) -> None:
        path = scope["path"]
        record = RecordId(idempotency_scope(principal), path, key)
        fingerprint = request_fingerprint(body)
        try:
            if record in self._unsettled:  # its first attempt here ended long ago: take the key over now
                await to_thread.run_sync(self.idempotency.release, record)
                self._unsettled.pop(record, None)
            outcome = await to_thread.run_sync(self.idempotency.begin, record, fingerprint)
        except STORE_ERRORS as error:
            await store_unavailable(scope, receive, send, error)
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
        await send_stored(stored, send)

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
        status = self.status_of(scope)
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


def idempotency_scope(principal: Principal) -> str:
    """Whose idempotency keys these are. The operator and departments are told apart by kind, not by
    name alone: ``admin`` is also a valid department id, and must never be replayed the operator's answers."""
    return "operator" if principal.is_admin else f"department:{principal.id}"


async def send_stored(stored: StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers.items()]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
