"""The HTTP side of idempotency keys (API.md §1): which keys are valid, when two bodies are the same
request, how the command's events carry the key's record, what a stored answer may keep, and how a
command that was recorded but never answered is answered again. The records themselves are kept by
`store.idempotency`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import rfc8785
from eventsourcing.domain import Aggregate

from api.presenters import check_document
from domain.check import Check
from store.idempotency import CommittedAttachment, Recorded, RecordId, StoredResponse

if TYPE_CHECKING:
    from api.bootstrap import Services
    from api.principal import Principal

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
