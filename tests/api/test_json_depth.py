"""One nesting limit for every JSON the service accepts (issue #11.1): ``strictjson.MAX_JSON_DEPTH``.

A body nesting deeper (claims, statements) is 422 ``validation_error`` and records nothing; a JWS whose
payload nests deeper verifies ``valid: false`` with reasons exactly ``["malformed"]``; a bundle deeper
than its own limit fails verification without a crash. And nothing stored can make a read fail: a check
recorded with claims 300 deep (as before the limit existed) still reads, as do its history, the lists
and the inbox. Before the fix the deep check was 201 and every read of it 500, and verify answered 500.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from audit.bundle import verify_bundle
from signing import strictjson
from signing.strictjson import MAX_JSON_DEPTH
from tests.api.conftest import Province
from tests.api.test_errors import assert_problem
from tests.bodies import check_body


def nested(levels: int) -> dict[str, Any]:
    """An object nesting ``levels`` deep: ``{"n": {"n": ... {} }}``."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_the_limit_is_exact() -> None:
    assert strictjson.depth(nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH
    assert strictjson.loads(json.dumps(nested(MAX_JSON_DEPTH)).encode()) == nested(MAX_JSON_DEPTH)
    for levels in (MAX_JSON_DEPTH + 1, 300, 100_000):
        with pytest.raises(strictjson.TooDeep):
            strictjson.loads(("[" * levels + "]" * levels).encode())
    # Brackets inside strings do not nest.
    assert strictjson.loads(json.dumps({"s": "[" * 1000}).encode()) == {"s": "[" * 1000}


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 300])
def test_a_body_nesting_too_deep_is_422_and_records_nothing(shared_province: Province, levels: int) -> None:
    p = shared_province
    before = p.position()
    # The body nests one level more than its claims.
    response = p.as_("approver").post("/v1/checks", json=check_body(claims=nested(levels)))
    assert_problem(response, 422, "validation_error")
    assert p.position() == before


def test_claims_at_the_limit_are_accepted_and_read(shared_province: Province) -> None:
    p = shared_province
    check = p.raise_check(claims=nested(MAX_JSON_DEPTH - 1))
    assert p.as_("auditor").get(f"/v1/checks/{check['id']}", expect=200).json()["claims"] == nested(MAX_JSON_DEPTH - 1)


def test_reply_statements_nesting_too_deep_are_422_and_record_nothing(shared_province: Province) -> None:
    p = shared_province
    check = p.raise_check()
    before = p.position()
    body = {"conclusion": "confirmed", "statements": nested(300)}
    assert_problem(p.as_("gulou").post(f"/v1/checks/{check['id']}/reply", json=body), 422, "validation_error")
    assert p.position() == before
    assert p.as_("approver").get(f"/v1/checks/{check['id']}", expect=200).json()["status"] == "raised"


def test_verify_of_a_jws_whose_payload_nests_too_deep_is_malformed(shared_province: Province) -> None:
    p = shared_province
    header = b64(json.dumps({"alg": "EdDSA", "typ": "nocert-proof+jws"}).encode())
    payload = b64(json.dumps(nested(300)).encode())
    for who in ("approver", "stranger", "gulou", "auditor"):
        verdict = p.as_(who).post("/v1/proofs/verify", json={"jws": f"{header}.{payload}.AAAA"}, expect=200).json()
        assert verdict["valid"] is False and verdict["reasons"] == ["malformed"]


def test_a_bundle_nesting_too_deep_fails_verification_without_a_crash(shared_province: Province) -> None:
    root = shared_province.services.keystore.root()[1]
    verdict = verify_bundle(("[" * 100_000 + "]" * 100_000).encode(), root, datetime.now(UTC))
    assert verdict.valid is False and verdict.reasons


def test_nothing_stored_makes_a_read_fail(shared_province: Province) -> None:
    """A check recorded with claims 300 deep (the limit is at the HTTP edge; this goes round it, as data
    recorded before the limit did) is read without a 5xx by every reader, in every form."""
    p = shared_province
    body = check_body(claims=nested(300))
    check, _ = p.services.platform.raise_check(
        p.approver.id,
        category=body["category"],
        matter=body["matter"],
        applicant=body["applicant"],
        claims=body["claims"],
        purpose=body["purpose"],
        consent=body["consent"],
    )
    p.settle()
    check_id = str(check.id)
    for who in ("approver", "gulou", "auditor"):
        caller = p.as_(who)
        for path, params in (
            (f"/v1/checks/{check_id}", None),
            (f"/v1/checks/{check_id}", {"version": "1"}),
            (f"/v1/checks/{check_id}/history", None),
            ("/v1/checks", {"limit": 500}),
        ):
            response = caller.get(path, params=params)
            assert response.status_code == 200, (who, path, response.text[:300])
    inbox = p.as_("gulou").get("/v1/inbox", params={"limit": 500})
    assert inbox.status_code == 200 and any(item["id"] == check_id for item in inbox.json()["items"])
    # The issuer can still act on it.
    accepted = p.as_("gulou").post(f"/v1/checks/{check_id}/accept", json={})
    assert accepted.status_code == 200, accepted.text[:300]
