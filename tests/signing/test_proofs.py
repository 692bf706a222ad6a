"""The proof validity rules of API.md section 5, one reason code at a time."""

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from jwcrypto import jwk
from jwcrypto import jws as jwcrypto_jws

from domain.proof import build_proof_payload
from signing.certificates import create_root, to_der
from signing.jws import sign_compact
from signing.proofs import (
    REASONS,
    CertificateTrust,
    DepartmentTrust,
    ProofVerdict,
    seal_proof,
    verify_proof,
)

from .conftest import DEPARTMENT_ID, DEPARTMENT_NAME, DEPARTMENT_USCC

OTHER_DEPARTMENT = "9a0e7c1d-3b6f-4c2a-8e5d-7f1b2c3d4e5f"
ISSUED_AT = datetime.now(UTC).replace(microsecond=0)
VALID_UNTIL = ISSUED_AT + timedelta(days=30)
NOW = ISSUED_AT + timedelta(days=1)


@dataclass
class FakeTrust:
    departments: dict[str, DepartmentTrust] = field(default_factory=dict)
    revoked_proofs: set[str] = field(default_factory=set)

    def department(self, department_id):
        return self.departments.get(department_id)

    def proof_revoked(self, payload):
        return payload.get("id") in self.revoked_proofs


def trust_for(*signers, revoked_at=None, revoked_proofs=()):
    """Trust knowing DEPARTMENT_ID and OTHER_DEPARTMENT, with the given signers' certificates."""
    certificates = {s.kid: CertificateTrust(s.kid, revoked_at) for s in signers}
    return FakeTrust(
        {
            DEPARTMENT_ID: DepartmentTrust(DEPARTMENT_ID, certificates),
            OTHER_DEPARTMENT: DepartmentTrust(OTHER_DEPARTMENT, {}),
        },
        set(revoked_proofs),
    )


def payload(issuer_id=DEPARTMENT_ID, **changes):
    body = build_proof_payload(
        proof_id=str(uuid.uuid4()),
        check_id=str(uuid.uuid4()),
        category="HR-001",
        matter={"code": "M-01", "name": "城乡居民基本养老保险参保登记"},
        issuer={"id": issuer_id, "name": DEPARTMENT_NAME, "uscc": DEPARTMENT_USCC},
        requester={"id": "approver-1", "name": "福州市人力资源和社会保障局"},
        subject={"name": "张三", "id_number": "11010519491231002X"},
        claims={"household": "福州市鼓楼区"},
        conclusion="confirmed",
        statements={"note": "经核查属实"},
        issued_at=ISSUED_AT,
        valid_until=VALID_UNTIL,
    )
    body.update(changes)
    return body


def forge(signer, body, **header):
    """A proof signed by `signer` under a header of our choosing."""
    base = {
        "typ": "nocert-proof+jws",
        "kid": signer.kid,
        "x5c": [base64.b64encode(to_der(signer.certificate)).decode()],
    }
    return sign_compact({k: v for k, v in (base | header).items() if v is not None}, body, signer)


def check(text, root, trust, now=NOW) -> ProofVerdict:
    return verify_proof(text, root[1], trust, now)


def test_a_good_proof_is_valid(root, dept_seal):
    body = payload()
    verdict = check(seal_proof(dept_seal, body), root, trust_for(dept_seal))
    assert verdict == ProofVerdict(True, [], body, dept_seal.kid, DEPARTMENT_ID)


def test_a_sealed_proof_verifies_with_jwcrypto(dept_seal):
    body = payload()
    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(seal_proof(dept_seal, body))
    verifier.verify(jwk.JWK.from_pyca(dept_seal.certificate.public_key()), alg="EdDSA")
    assert json.loads(verifier.payload) == body
    assert verifier.jose_header["typ"] == "nocert-proof+jws"
    assert verifier.jose_header["kid"] == dept_seal.kid


def test_malformed(root, dept_seal):
    alg_none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    unsigned = alg_none + "." + seal_proof(dept_seal, payload()).split(".")[1] + "."
    for text in ("not a jws", "a.b.c.d", 42):
        assert check(text, root, trust_for(dept_seal)) == ProofVerdict(False, ["malformed"], None, None, None)
    # The payload parses: it and its issuer are told, `malformed` alone (API.md §5, #11.10).
    body = json.loads(base64.urlsafe_b64decode(unsigned.split(".")[1] + "=="))
    assert check(unsigned, root, trust_for(dept_seal)) == ProofVerdict(False, ["malformed"], body, None, DEPARTMENT_ID)


def test_bad_signature(root, dept_seal):
    good = seal_proof(dept_seal, payload())
    other = seal_proof(dept_seal, payload())
    spliced = good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]
    verdict = check(spliced, root, trust_for(dept_seal))
    assert verdict.reasons == ["bad_signature"]
    assert verdict.payload is not None and verdict.kid == dept_seal.kid


def test_unknown_issuer(root, dept_seal):
    verdict = check(seal_proof(dept_seal, payload()), root, FakeTrust())
    assert verdict.reasons == ["unknown_issuer"]
    assert verdict.issuer == DEPARTMENT_ID


def test_untrusted_certificate_from_another_root(root, make_seal):
    foreign = make_seal(by=create_root("another root"))
    verdict = check(seal_proof(foreign, payload()), root, trust_for(foreign))
    assert verdict.reasons == ["untrusted_certificate"]


@pytest.mark.parametrize("x5c", [None, [], ["bm90IGEgY2VydGlmaWNhdGU="], ["%%%"], "MIIB"])
def test_untrusted_certificate_when_x5c_is_missing_or_unparseable(root, dept_seal, x5c):
    verdict = check(forge(dept_seal, payload(), x5c=x5c), root, trust_for(dept_seal))
    assert verdict.reasons == ["untrusted_certificate"]
    assert verdict.kid == dept_seal.kid and verdict.issuer == DEPARTMENT_ID


def test_without_certificate_the_payload_rules_still_apply(root, dept_seal):
    body = payload(valid_until="2020-01-01T00:00:00Z")
    verdict = check(forge(dept_seal, body, x5c=None), root, FakeTrust(revoked_proofs={body["id"]}))
    # Revocation facts only for a JWS whose signature verifies (#11.9): not for one without a certificate.
    assert verdict.reasons == ["unknown_issuer", "untrusted_certificate", "proof_expired"]


def test_certificate_expired(root, make_seal):
    expired = make_seal(not_before=ISSUED_AT - timedelta(days=800), years=2)
    verdict = check(seal_proof(expired, payload()), root, trust_for(expired))
    assert verdict.reasons == ["certificate_expired"]


def test_certificate_not_yet_valid(root, make_seal):
    future = make_seal(not_before=ISSUED_AT + timedelta(hours=1))
    verdict = check(seal_proof(future, payload()), root, trust_for(future))
    assert verdict.reasons == ["certificate_expired"]


@pytest.mark.parametrize("issued_at", [None, "yesterday", 1700000000, "2026-11-26 12:00:00"])
def test_missing_or_garbled_issued_at_fails_certificate_expired(root, dept_seal, issued_at):
    body = payload(issued_at=issued_at)
    if issued_at is None:
        del body["issued_at"]
    verdict = check(seal_proof(dept_seal, body), root, trust_for(dept_seal))
    assert verdict.reasons == ["certificate_expired"]


def test_key_revoked_at_issue_time(root, dept_seal):
    verdict = check(seal_proof(dept_seal, payload()), root, trust_for(dept_seal, revoked_at=ISSUED_AT))
    assert verdict.reasons == ["key_revoked"]


def test_key_revoked_after_issue_keeps_earlier_proofs_valid(root, dept_seal):
    trust = trust_for(dept_seal, revoked_at=ISSUED_AT + timedelta(microseconds=1))
    assert check(seal_proof(dept_seal, payload()), root, trust).valid


def test_proof_revoked(root, dept_seal):
    body = payload()
    verdict = check(seal_proof(dept_seal, body), root, trust_for(dept_seal, revoked_proofs=[body["id"]]))
    assert verdict.reasons == ["proof_revoked"]


def test_proof_expired_at_valid_until(root, dept_seal):
    text = seal_proof(dept_seal, payload())
    assert check(text, root, trust_for(dept_seal), now=VALID_UNTIL - timedelta(microseconds=1)).valid
    verdict = check(text, root, trust_for(dept_seal), now=VALID_UNTIL)
    assert verdict.reasons == ["proof_expired"]


@pytest.mark.parametrize("valid_until", [None, "", "2026-13-01T00:00:00Z", ["2030-01-01T00:00:00Z"]])
def test_missing_or_garbled_valid_until_fails_proof_expired(root, dept_seal, valid_until):
    body = payload(valid_until=valid_until)
    if valid_until is None:
        del body["valid_until"]
    verdict = check(seal_proof(dept_seal, body), root, trust_for(dept_seal))
    assert verdict.reasons == ["proof_expired"]


def test_kid_mismatch(root, dept_seal):
    verdict = check(forge(dept_seal, payload(), kid="0" * 64), root, trust_for(dept_seal))
    assert verdict.reasons == ["kid_mismatch"]
    assert verdict.kid == "0" * 64


def test_kid_missing_is_a_mismatch(root, dept_seal):
    verdict = check(forge(dept_seal, payload(), kid=None), root, trust_for(dept_seal))
    assert verdict.reasons == ["kid_mismatch"]
    assert verdict.kid is None


def test_issuer_mismatch(root, dept_seal):
    verdict = check(forge(dept_seal, payload(OTHER_DEPARTMENT)), root, trust_for(dept_seal))
    assert verdict.reasons == ["issuer_mismatch"]
    assert verdict.issuer == OTHER_DEPARTMENT


def test_issuer_missing_fails_both_issuer_rules(root, dept_seal):
    body = payload()
    del body["issuer"]
    verdict = check(forge(dept_seal, body), root, trust_for(dept_seal))
    assert verdict.reasons == ["unknown_issuer", "issuer_mismatch"]
    assert verdict.issuer is None


def test_every_failing_rule_is_listed_in_contract_order(root, make_seal):
    foreign = make_seal(by=create_root("another root"), not_before=ISSUED_AT - timedelta(days=800), years=2)
    header, _, signature = forge(foreign, payload(OTHER_DEPARTMENT), kid="f" * 64).split(".")
    body = payload(OTHER_DEPARTMENT)
    swapped_payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    trust = FakeTrust(revoked_proofs={body["id"]})
    verdict = check(f"{header}.{swapped_payload}.{signature}", root, trust, now=VALID_UNTIL)
    assert verdict.valid is False
    assert verdict.reasons == [
        "bad_signature",
        "unknown_issuer",
        "untrusted_certificate",
        "certificate_expired",
        "proof_expired",  # no proof_revoked: the signature does not verify (#11.9)
        "kid_mismatch",
        "issuer_mismatch",
    ]


def test_all_reason_codes_are_the_contracts():
    assert REASONS == tuple(
        "malformed bad_signature unknown_issuer untrusted_certificate certificate_expired key_revoked "
        "proof_revoked proof_expired kid_mismatch issuer_mismatch".split()
    )


def test_offline_verification_checks_everything_it_can(root, dept_seal, make_seal):
    body = payload()
    verdict = check(seal_proof(dept_seal, body), root, None)
    assert verdict == ProofVerdict(True, [], body, dept_seal.kid, DEPARTMENT_ID)
    foreign = make_seal(by=create_root("another root"))
    assert check(seal_proof(foreign, payload()), root, None).reasons == ["untrusted_certificate"]
    assert check(seal_proof(dept_seal, body), root, None, now=VALID_UNTIL).reasons == ["proof_expired"]


def test_seal_refuses_a_payload_of_another_issuer(dept_seal):
    with pytest.raises(ValueError):
        seal_proof(dept_seal, payload(OTHER_DEPARTMENT))


def test_payload_has_the_contract_fields_in_order():
    body = payload()
    assert list(body) == [
        "type", "id", "check_id", "category", "matter", "issuer", "requester", "subject",
        "claims", "conclusion", "statements", "issued_at", "valid_until",
    ]  # fmt: skip
    assert body["type"] == "nocert.proof.v1"
    assert body["issued_at"].endswith(".000000Z")


@pytest.mark.parametrize(
    "changes",
    [{"conclusion": "maybe"}, {"valid_until": ISSUED_AT}],
)
def test_payload_refuses_bad_values(changes):
    arguments = dict(
        proof_id="p", check_id="c", category="x", matter={}, issuer={}, requester={}, subject={},
        claims={}, conclusion="confirmed", statements={}, issued_at=ISSUED_AT, valid_until=VALID_UNTIL,
    )  # fmt: skip
    with pytest.raises(ValueError):
        build_proof_payload(**(arguments | changes))
