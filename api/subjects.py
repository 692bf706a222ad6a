"""The subjects' access log and erasure (API.md §14), between the routes and the services: the blind index
lookup with its record, and erasure's order of steps (keys destroyed, events recorded, receipt signed)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.bootstrap import Services
from api.principal import Principal
from api.problems import Problem
from domain.errors import NotFound
from domain.identifiers import mask_id_number, validate_id_number
from domain.timefmt import format_time
from signing import jws

RECEIPT_TYPE = "nocert.erasure.v1"
RECEIPT_TYP = "nocert-erasure+jws"
CATCH_UP_SECONDS = 5.0


def accesses(services: Services, principal: Principal, id_number: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Every check whose applicant is the person, newest first; the lookup is recorded without the number."""
    number = validate_id_number(id_number)
    items, next_cursor = services.views.accesses(services.subjects.index.of(number), limit=limit, cursor=cursor)
    names: dict[str, str | None] = {}
    for item in items:
        for party in (item["approver"], item["issuer"]):
            if party["id"] not in names:
                names[party["id"]] = _department_name(services, party["id"])
            party["name"] = names[party["id"]]
    services.views.record_lookup(principal.id, format_time(services.platform.clock()), len(items))
    return {"subject": mask_id_number(number), "items": items, "next_cursor": next_cursor}


def _department_name(services: Services, department_id: str) -> str | None:
    try:
        return services.platform.department(department_id).name
    except NotFound:
        return None


def erase(services: Services, principal: Principal, id_number: str, legal_basis: str) -> tuple[dict[str, Any], int]:
    """Destroys the person's keys, then records ``SubjectErased`` on each of their checks, then signs and
    keeps the receipt. Keys go first: should a step after fail, the data is already unreadable and a
    repeat records what is missing."""
    number = validate_id_number(id_number)
    subject = services.subjects.index.of(number)
    if not services.views.wait_for(services.log.max_position(), CATCH_UP_SECONDS):
        raise Problem("not_caught_up", "the views are behind the log; retry the erasure")
    check_ids = [UUID(check_id) for check_id in services.views.checks_of_subject(subject)]
    if not check_ids:
        raise NotFound("no check has that applicant")
    services.subjects.keys.erase(subject)
    erasure_id = str(uuid.uuid4())
    erased, position = services.platform.erase_subject(check_ids, principal.id, erasure_id)
    erased_at = format_time(services.platform.clock())
    payload = {
        "type": RECEIPT_TYPE,
        "subject_hmac": subject,
        "checks": len(check_ids),
        "erased_at": erased_at,
        "legal_basis": legal_basis,
    }
    receipt = jws.seal(services.keystore.ledger_signer(), RECEIPT_TYP, payload)
    services.views.record_erasure(erasure_id, erased_at, len(check_ids), receipt)
    if position:
        services.views.nudge(urgent=True)
        services.views.wait_for(position, CATCH_UP_SECONDS)
    answer = {"subject": mask_id_number(number), "erased_at": erased_at, "checks": len(check_ids), "receipt": receipt}
    return answer, position or services.log.max_position()


def replay_erasures(services: Services) -> tuple[int, int]:
    """Destroys again every key an erasure destroyed (after a restore of the key store from a backup older
    than an erasure): the receipts in ``subject_erasures`` name the subjects. Returns (erasures, keys
    destroyed now)."""
    erasures, destroyed, cursor = 0, 0, None
    while True:
        items, cursor = services.views.erasures(limit=500, cursor=cursor)
        for item in items:
            subject = jws.parse_compact(item["receipt"]).payload["subject_hmac"]
            destroyed += len(services.subjects.keys.erase(subject))
            erasures += 1
        if cursor is None:
            return erasures, destroyed


class ReceiptRefused(ValueError):
    """A receipt that is no erasure receipt signed by this platform's ledger key."""


def replay_receipts(services: Services, receipts: list[str]) -> tuple[int, int]:
    """`replay_erasures` from receipts kept outside the store (``GET /v1/subjects/erasures``), for a restore
    of a whole backup older than an erasure: its ``subject_erasures`` do not know the erasure either. Every
    receipt is checked before any key is destroyed (the ledger key's signature, its type). Returns
    (erasures, keys destroyed now)."""
    ledger = services.keystore.ledger_signer().certificate.public_key()
    subjects = []
    for number, receipt in enumerate(receipts, 1):
        try:
            parsed = jws.parse_compact(receipt)
        except ValueError as error:
            raise ReceiptRefused(f"receipt {number}: not a compact JWS ({error})") from None
        if parsed.header.get("typ") != RECEIPT_TYP or parsed.payload.get("type") != RECEIPT_TYPE:
            raise ReceiptRefused(f"receipt {number}: not an erasure receipt ({RECEIPT_TYPE})")
        if not isinstance(ledger, Ed25519PublicKey) or not jws.verify_signature(parsed, ledger):
            raise ReceiptRefused(f"receipt {number}: not signed by this platform's ledger key")
        subject = parsed.payload.get("subject_hmac")
        if not isinstance(subject, str) or not subject:
            raise ReceiptRefused(f"receipt {number}: no subject_hmac")
        subjects.append(subject)
    destroyed = sum(len(services.subjects.keys.erase(subject)) for subject in subjects)
    return len(subjects), destroyed
