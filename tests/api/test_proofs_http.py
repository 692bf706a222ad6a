"""API.md §5 through HTTP: sealed proofs, who reads them, verification, revocation and the trust root."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from domain.timefmt import parse_time
from tests.api.conftest import Province
from tests.bodies import APPLICANT

REASONS = {
    "malformed", "bad_signature", "unknown_issuer", "untrusted_certificate", "certificate_expired", "key_revoked",
    "proof_revoked", "proof_expired", "kid_mismatch", "issuer_mismatch",
}
PROOF_RECORD = {"id", "check_id", "jws", "status", "revoked_at", "revocation_reason"}
VERDICT = {"valid", "reasons", "payload", "kid", "issuer", "recorded"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(jws: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    header, payload, signature = jws.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), unb64url(signature)


def verify(p: Province, jws: Any, who: str = "approver") -> dict[str, Any]:
    verdict = p.as_(who).post("/v1/proofs/verify", json={"jws": jws}, expect=200).json()
    assert set(verdict) == VERDICT
    assert set(verdict["reasons"]) <= REASONS
    assert verdict["valid"] is (verdict["reasons"] == [])
    return verdict


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


def test_a_reply_seals_a_proof(p: Province) -> None:
    replied = p.replied_check()
    proof = replied["proof"]
    uuid.UUID(proof["id"])
    header, payload, signature = parts(proof["jws"])
    assert header["alg"] == "EdDSA" and header["typ"] == "nocert-proof+jws" and header["kid"] == proof["kid"] == p.gulou.kid
    der = base64.b64decode(header["x5c"][0])
    assert hashlib.sha256(der).hexdigest() == header["kid"]
    assert len(signature) == 64
    assert payload["type"] == "nocert.proof.v1" and payload["id"] == proof["id"] and payload["check_id"] == replied["id"]
    assert payload["category"] == replied["category"] and payload["matter"] == replied["matter"]
    assert payload["issuer"] == {"id": "fz-gulou-police", "name": "福州市公安局鼓楼分局", "uscc": p.gulou.document["uscc"]}
    assert payload["requester"] == {"id": "fz-estate", "name": "福州市不动产登记中心"}
    assert payload["subject"] == {"name": "林某某", "id_number": APPLICANT}
    assert payload["claims"] == replied["claims"]
    assert payload["conclusion"] == "confirmed" and payload["statements"] == {"same_person": True}
    assert parse_time(payload["valid_until"]) - parse_time(payload["issued_at"]) == dt.timedelta(days=90)
    assert payload["issued_at"].endswith("Z") and payload["valid_until"].endswith("Z")


def test_who_reads_a_proof(p: Province) -> None:
    check = p.raise_check()
    p.act(check["id"], "forward", "gulou")
    replied = p.act(check["id"], "reply", "city")
    proof_id = replied["proof"]["id"]
    for who in ("approver", "city", "auditor"):
        record = p.as_(who).get(f"/v1/proofs/{proof_id}", expect=200).json()
        assert record == {
            "id": proof_id, "check_id": check["id"], "jws": replied["proof"]["jws"], "status": "valid",
            "revoked_at": None, "revocation_reason": None,
        }
    for who in ("gulou", "stranger", "civil", "admin"):  # the former issuer did not seal it
        assert p.as_(who).get(f"/v1/proofs/{proof_id}", expect=404).json()["code"] == "not_found"
    for unknown in (str(uuid.uuid4()), check["id"], "not-a-uuid"):
        assert p.as_("auditor").get(f"/v1/proofs/{unknown}", expect=404).json()["code"] == "not_found"
    # A check without a proof has no proof id to find.
    pending = p.raise_check()
    assert p.as_("approver").get(f"/v1/checks/{pending['id']}").json()["proof"] is None


def test_verify_a_valid_proof(p: Province) -> None:
    replied = p.replied_check()
    jws = replied["proof"]["jws"]
    for who in ("approver", "stranger", "auditor", "admin", "civil"):
        verdict = verify(p, jws, who)
        assert verdict["valid"] is True and verdict["reasons"] == []
        assert verdict["kid"] == p.gulou.kid and verdict["issuer"] == "fz-gulou-police"
        assert verdict["payload"] == parts(jws)[1]


def test_a_tampered_proof_is_bad_signature(p: Province) -> None:
    jws = p.replied_check()["proof"]["jws"]
    header, payload, signature = jws.split(".")
    changed = json.loads(unb64url(payload)) | {"conclusion": "not_confirmed"}
    forged_payload = f"{header}.{b64url(json.dumps(changed, ensure_ascii=False).encode())}.{signature}"
    verdict = verify(p, forged_payload)
    assert verdict["valid"] is False and "bad_signature" in verdict["reasons"]
    assert verdict["payload"]["conclusion"] == "not_confirmed" and verdict["issuer"] == "fz-gulou-police"
    raw = bytearray(unb64url(signature))
    raw[0] ^= 1
    verdict = verify(p, f"{header}.{payload}.{b64url(bytes(raw))}")
    assert verdict["reasons"] == ["bad_signature"] and verdict["kid"] == p.gulou.kid


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!.??.**",
        b64url(b'{"alg":"none","typ":"nocert-proof+jws"}') + "." + b64url(b"{}") + ".",
        b64url(b'{"alg":"HS256"}') + "." + b64url(b'{"type":"nocert.proof.v1"}') + "." + b64url(b"x" * 32),
        b64url(b"[1]") + "." + b64url(b"{}") + "." + b64url(b"x" * 64),
    ],
)
def test_malformed_proofs_are_malformed_alone(p: Province, text: str) -> None:
    verdict = verify(p, text)
    # The payload is told whenever it parses (API.md §5; #11.10), `malformed` stays alone.
    parsed = text.count(".") == 2 and text.split(".")[0].startswith("eyJ")
    payload = json.loads(unb64url(text.split(".")[1])) if parsed else None
    assert verdict == {"valid": False, "reasons": ["malformed"], "payload": payload, "kid": None, "issuer": None, "recorded": False}


def test_a_proof_under_a_foreign_certificate_is_untrusted(p: Province) -> None:
    _, payload, _ = parts(p.replied_check()["proof"]["jws"])
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "福州市公安局鼓楼分局")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:nocert:department:fz-gulou-police")]), critical=False
        )
        .sign(key, None)
    )
    der = certificate.public_bytes(Encoding.DER)
    header = {"alg": "EdDSA", "typ": "nocert-proof+jws", "kid": hashlib.sha256(der).hexdigest(), "x5c": [base64.b64encode(der).decode()]}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload, ensure_ascii=False).encode())}"
    forged = f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"
    verdict = verify(p, forged)
    assert verdict["valid"] is False and "untrusted_certificate" in verdict["reasons"]
    assert "bad_signature" not in verdict["reasons"]
    # The platform's kid for a foreign certificate: kid_mismatch when the header names another one.
    header["kid"] = p.gulou.kid
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload, ensure_ascii=False).encode())}"
    verdict = verify(p, f"{signing_input}.{b64url(key.sign(signing_input.encode()))}")
    assert {"untrusted_certificate", "kid_mismatch"} <= set(verdict["reasons"]) and verdict["kid"] == p.gulou.kid


def test_verify_body_must_hold_a_jws_string(p: Province) -> None:
    for body in ({}, {"jws": 5}, {"jws": None}, {"jws": "x", "extra": 1}):
        assert p.as_("approver").post("/v1/proofs/verify", json=body, expect=422).json()["code"] == "validation_error"


def test_revoking_a_proof(p: Province) -> None:
    replied = p.replied_check()
    proof_id = replied["proof"]["id"]
    assert p.as_("gulou").post(f"/v1/proofs/{proof_id}/revoke", json={}, expect=422).json()["code"] == "validation_error"
    response = p.as_("gulou").post(f"/v1/proofs/{proof_id}/revoke", json={"reason": "出具内容有误"}, expect=200)
    assert response.headers["X-Event-Position"].isdigit()
    record = response.json()
    assert set(record) == PROOF_RECORD
    assert record["id"] == proof_id and record["check_id"] == replied["id"] and record["status"] == "revoked"
    assert record["revocation_reason"] == "出具内容有误" and record["revoked_at"].endswith("Z")
    assert p.as_("auditor").get(f"/v1/proofs/{proof_id}", expect=200).json() == record
    check = p.as_("approver").get(f"/v1/checks/{replied['id']}").json()
    assert check["proof"]["status"] == "revoked" and check["status"] == "replied"
    verdict = verify(p, replied["proof"]["jws"])
    assert verdict["valid"] is False and verdict["reasons"] == ["proof_revoked"]
    assert p.act(replied["id"], "close", "approver", {"outcome": "exempted"}, expect=409)["code"] == "invalid_transition"
    assert p.as_("gulou").post(f"/v1/proofs/{proof_id}/revoke", json={"reason": "again"}, expect=409).json()["code"] == "invalid_transition"
    # Another outcome still closes it.
    assert p.act(replied["id"], "close", "approver", {"outcome": "applicant_submitted"})["status"] == "closed"


def test_a_closed_exempted_checks_proof_may_still_be_revoked(p: Province) -> None:
    replied = p.replied_check()
    p.act(replied["id"], "close", "approver", {"outcome": "exempted"})
    record = p.as_("gulou").post(f"/v1/proofs/{replied['proof']['id']}/revoke", json={"reason": "事后发现错误"}, expect=200).json()
    assert record["status"] == "revoked"
    assert verify(p, replied["proof"]["jws"])["reasons"] == ["proof_revoked"]


def test_a_revoked_current_key_cannot_reply(p: Province) -> None:
    issuer = p.department(f"seal-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    check = p.raise_check(issuer=issuer.id)
    p.admin.post(f"/v1/departments/{issuer.id}/keys/{issuer.kid}/revoke", json={"reason": "丢失"}, expect=200)
    assert p.act(check["id"], "reply", issuer, expect=409)["code"] == "no_signing_key"
    assert p.as_("approver").get(f"/v1/checks/{check['id']}").json()["status"] == "raised"
    # Declining needs no seal.
    assert p.act(check["id"], "decline", issuer)["status"] == "declined"


def test_the_trust_root_needs_no_key(p: Province) -> None:
    response = p.client.get("/v1/trust/root")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-pem-file")
    assert response.text.startswith("-----BEGIN CERTIFICATE-----")
    root = x509.load_pem_x509_certificate(response.content)
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    # It is the issuer of every seal certificate: an offline verifier needs nothing else.
    header, _, _ = parts(p.replied_check()["proof"]["jws"])
    seal = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    seal.verify_directly_issued_by(root)
    for listed in p.admin.get("/v1/departments", params={"limit": 500}).json()["items"]:
        for certificate in listed["certificates"]:
            x509.load_pem_x509_certificate(certificate["certificate_pem"].encode()).verify_directly_issued_by(root)
    # A key, even a wrong one, changes nothing.
    assert p.roaming("wrong").get("/v1/trust/root").content == response.content


def test_the_operator_never_reads_a_proof_of_a_department_named_admin(p: Province) -> None:
    """``admin`` is a valid department id; the operator's principal must not pass for that department."""
    named = p.members.get("admin-named") or p.department("admin-named", id="admin", roles=["approver"], kind="real-estate", region="350111")
    replied = p.replied_check(by=named)
    proof_id = replied["proof"]["id"]
    assert p.as_(named).get(f"/v1/proofs/{proof_id}", expect=200).json()["jws"] == replied["proof"]["jws"]
    assert p.admin.get(f"/v1/proofs/{proof_id}", expect=404).json()["code"] == "not_found"
    assert p.admin.get(f"/v1/checks/{replied['id']}", expect=403).json()["code"] == "forbidden"
