"""POST /v1/proofs/verify (API.md §5): ``payload`` and ``issuer`` are filled whenever the payload parses,
``alg`` wrong or missing included, with reasons exactly ``["malformed"]`` (issue #11.10: they were null);
revocation facts only for a JWS whose signature verifies (issue #11.9: an unsigned JWS naming a proof's id
told a stranger that the proof exists and was revoked); ``recorded`` tells whether the platform itself
sealed this exact JWS (issue #11.8). Each failed before its fix on both stores."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.api.conftest import Province


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def verify(p: Province, who: str, jws: str) -> dict[str, Any]:
    return p.as_(who).post("/v1/proofs/verify", json={"jws": jws}, expect=200).json()


@pytest.fixture(scope="module")
def replied(shared_province: Province) -> dict[str, Any]:
    return shared_province.replied_check()


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", None, 5])
def test_payload_and_issuer_are_filled_whenever_the_payload_parses(shared_province: Province, replied: dict[str, Any], alg: Any) -> None:
    p = shared_province
    header_part, payload_part, signature = replied["proof"]["jws"].split(".")
    header = unb64(header_part)
    if alg is None:
        del header["alg"]
    else:
        header["alg"] = alg
    text = f"{b64(json.dumps(header).encode())}.{payload_part}.{signature if alg != 'none' else ''}"
    verdict = verify(p, "approver", text)
    assert verdict["valid"] is False and verdict["reasons"] == ["malformed"]
    assert verdict["payload"] == unb64(payload_part)
    assert verdict["issuer"] == p.gulou.id
    assert verdict["kid"] == header["kid"]
    assert verdict["recorded"] is False


def test_an_unparseable_payload_leaves_them_null(shared_province: Province) -> None:
    header = b64(json.dumps({"alg": "none"}).encode())
    verdict = verify(shared_province, "approver", f"{header}.{b64(b'not json')}.")
    assert verdict == {"valid": False, "reasons": ["malformed"], "payload": None, "kid": None, "issuer": None, "recorded": False}


def test_revocation_facts_only_for_a_jws_whose_signature_verifies(shared_province: Province) -> None:
    p = shared_province
    revoked = p.replied_check()
    kept = p.replied_check()
    proof_id = revoked["proof"]["id"]
    p.as_("gulou").post(f"/v1/proofs/{proof_id}/revoke", json={"reason": "错误出具"}, expect=200)
    real = verify(p, "stranger", revoked["proof"]["jws"])
    assert real["valid"] is False and real["reasons"] == ["proof_revoked"] and real["recorded"] is True

    def forged(check: dict[str, Any], payload: dict[str, Any] | None = None, signature: str = "A" * 86) -> str:
        header_part, payload_part, _ = check["proof"]["jws"].split(".")
        body = payload_part if payload is None else b64(json.dumps(payload).encode())
        return f"{header_part}.{body}.{signature}"

    # The same certificate and payload with a signature that does not verify, and a payload of the
    # proof's id alone: the answers for the revoked proof and the kept one cannot be told apart.
    for make in (lambda c: forged(c), lambda c: forged(c, {"id": c["proof"]["id"]})):
        of_revoked, of_kept = verify(p, "stranger", make(revoked)), verify(p, "stranger", make(kept))
        assert "proof_revoked" not in of_revoked["reasons"]
        assert of_revoked["reasons"] == of_kept["reasons"]
        assert "bad_signature" in of_revoked["reasons"] and of_revoked["recorded"] is False
    # Without any certificate, too.
    bare = f"{b64(json.dumps({'alg': 'EdDSA'}).encode())}.{b64(json.dumps({'id': proof_id}).encode())}.{'A' * 86}"
    assert "proof_revoked" not in verify(p, "stranger", bare)["reasons"]
