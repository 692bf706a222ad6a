"""API.md §3 end to end: departments, their API keys and seal keys, and proof categories."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient

from api.app import create_app
from domain.identifiers import make_uscc
from domain.timefmt import format_time, parse_time
from tests.api.conftest import Province, build_services, new_uscc
from tests.bodies import CATEGORY


def kid_of_pem(pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def department_body(**overrides: object) -> dict:
    body = {
        "id": f"dept-{uuid.uuid4().hex[:8]}",
        "name": "福州市公安局仓山分局",
        "uscc": new_uscc(),
        "roles": ["issuer"],
        "kind": "police",
        "region": "350111",  # 晋安区: no applicant of these tests lives there, so routing is unchanged
    }
    body.update(overrides)
    return body


def all_pages(caller, path: str, limit: int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(1000):
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = caller.get(path, params=params, expect=200).json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination does not end")


def departments_by_id(province: Province) -> dict[str, dict]:
    return {item["id"]: item for item in all_pages(province.as_("auditor"), "/v1/departments", 500)}


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


# -- departments ---------------------------------------------------------------------------------


def test_create_issuer_answers_201_with_key_and_signing(p: Province) -> None:
    body = department_body(name="福州市公安局仓山分局")
    response = p.admin.post("/v1/departments", json=body, expect=201)
    document = response.json()
    assert int(response.headers["X-Event-Position"]) == p.position()  # the last event it recorded
    assert {k: document[k] for k in ("id", "name", "uscc", "roles", "kind", "region")} == {
        k: body[k] for k in ("id", "name", "uscc", "roles", "kind", "region")
    }
    assert document["name"] == "福州市公安局仓山分局"  # Chinese text unchanged
    assert isinstance(document["api_key"], str) and len(document["api_key"]) >= 32
    assert isinstance(document["api_key_id"], str) and document["api_key_id"]
    signing = document["signing"]
    assert set(signing) == {"kid", "certificate_pem"}
    assert signing["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert signing["kid"] == kid_of_pem(signing["certificate_pem"])
    assert len(signing["kid"]) == 64 and signing["kid"] == signing["kid"].lower()
    # The key shown works at once.
    own = p.client.get("/v1/categories", headers={"Authorization": f"Bearer {document['api_key']}"})
    assert own.status_code == 200


def test_create_non_issuer_has_null_signing(p: Province) -> None:
    for roles in (["approver"], ["auditor"], ["approver", "auditor"]):
        document = p.admin.post("/v1/departments", json=department_body(roles=roles, kind="other"), expect=201).json()
        assert document["signing"] is None
        assert document["roles"] == roles
    both = p.admin.post("/v1/departments", json=department_body(roles=["approver", "issuer"]), expect=201).json()
    assert both["signing"]["kid"] == kid_of_pem(both["signing"]["certificate_pem"])


def test_the_certificate_names_the_department(p: Province) -> None:
    body = department_body(name="福州市公安局晋安分局")
    document = p.admin.post("/v1/departments", json=body, expect=201).json()
    certificate = x509.load_pem_x509_certificate(document["signing"]["certificate_pem"].encode())
    subject = certificate.subject
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == body["name"]
    assert subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value == body["uscc"]
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"urn:nocert:department:{body['id']}" in san.get_values_for_type(x509.UniformResourceIdentifier)


def test_duplicate_id_or_uscc_is_409_conflict(p: Province) -> None:
    first = department_body()
    p.admin.post("/v1/departments", json=first, expect=201)
    same_id = p.admin.post("/v1/departments", json=department_body(id=first["id"]), expect=409).json()
    assert same_id["code"] == "conflict"
    same_uscc = p.admin.post("/v1/departments", json=department_body(uscc=first["uscc"]), expect=409).json()
    assert same_uscc["code"] == "conflict"
    # USCCs are upper-cased on input, so a lower-case spelling is the same code.
    lower = p.admin.post("/v1/departments", json=department_body(uscc=first["uscc"].lower()), expect=409).json()
    assert lower["code"] == "conflict"


def test_lower_case_uscc_is_upper_cased(p: Province) -> None:
    uscc = make_uscc("91350100MA2YQ8R3L")
    document = p.admin.post("/v1/departments", json=department_body(uscc=uscc.lower()), expect=201).json()
    assert document["uscc"] == uscc


@pytest.mark.parametrize(
    "uscc",
    [
        "91350100MA2YQ8R3L0",  # wrong check character (the right one is computed below and differs)
        "91350100MA2YQ8R3I" + "0",  # I is not in the alphabet
        "91350100MA2YQ8R3",  # too short
        "91350100MA2YQ8R3LXX",  # too long
        "",
    ],
)
def test_invalid_uscc_is_422_invalid_uscc(p: Province, uscc: str) -> None:
    if uscc == "91350100MA2YQ8R3L0" and make_uscc("91350100MA2YQ8R3L") == uscc:
        uscc = uscc[:-1] + "1"
    problem = p.admin.post("/v1/departments", json=department_body(uscc=uscc), expect=422).json()
    assert problem["code"] == "invalid_uscc"


@pytest.mark.parametrize("department_id", ["ab", "Fz-police", "fz_police", "fz police", "a" * 65, "福州", ""])
def test_bad_id_pattern_is_422(p: Province, department_id: str) -> None:
    problem = p.admin.post("/v1/departments", json=department_body(id=department_id), expect=422).json()
    assert problem["code"] == "validation_error"


@pytest.mark.parametrize(
    "overrides",
    [
        {"region": "35010"},
        {"region": "3501021"},
        {"roles": []},
        {"roles": ["king"]},
        {"roles": ["issuer", "issuer"]},
        {"name": ""},
        {"extra": 1},
    ],
)
def test_other_invalid_department_bodies_are_422(p: Province, overrides: dict) -> None:
    problem = p.admin.post("/v1/departments", json=department_body(**overrides), expect=422).json()
    assert problem["code"] == "validation_error"


def test_id_of_3_and_64_characters_is_accepted(p: Province) -> None:
    for department_id in (uuid.uuid4().hex[:3], "a" * 56 + uuid.uuid4().hex[:8]):
        assert p.admin.post("/v1/departments", json=department_body(id=department_id), expect=201).json()["id"] == department_id


def test_department_list_shows_public_data_and_certificates_never_keys(p: Province) -> None:
    response = p.as_("approver").get("/v1/departments", params={"limit": 500}, expect=200)
    text = response.text
    for member in p.members.values():
        assert member.key not in text
    assert "api_key" not in text
    listed = {item["id"]: item for item in response.json()["items"]}
    gulou = listed["fz-gulou-police"]
    assert set(gulou) == {"id", "name", "uscc", "roles", "kind", "region", "status", "certificates"}
    assert gulou["status"] == "active"  # API.md §10
    assert gulou["name"] == "福州市公安局鼓楼分局"
    assert gulou["certificates"] == [
        {"kid": p.gulou.kid, "certificate_pem": p.gulou.document["signing"]["certificate_pem"], "status": "active", "revoked_at": None}
    ]
    assert listed["fz-estate"]["certificates"] == []
    assert listed["fj-audit"]["roles"] == ["auditor"]


def test_every_principal_lists_departments(p: Province) -> None:
    for who in ("admin", "approver", "gulou", "auditor", "stranger"):
        p.as_(who).get("/v1/departments", expect=200)


def test_extra_api_key_works_and_a_deleted_key_fails_at_once(p: Province) -> None:
    member = p.department(f"keys-{uuid.uuid4().hex[:4]}", roles=["approver"], kind="real-estate", region="350111")
    extra = p.admin.post(f"/v1/departments/{member.id}/api-keys", json={}, expect=201)
    assert int(extra.headers["X-Event-Position"]) > 0
    issued = extra.json()
    assert set(issued) == {"api_key", "api_key_id"}
    assert issued["api_key"] != member.key and issued["api_key_id"] != member.key_id
    headers_extra = {"Authorization": f"Bearer {issued['api_key']}"}
    headers_first = {"Authorization": f"Bearer {member.key}"}
    assert p.client.get("/v1/categories", headers=headers_extra).status_code == 200
    assert p.client.get("/v1/categories", headers=headers_first).status_code == 200
    # An empty body is accepted as {} too.
    assert p.client.post(f"/v1/departments/{member.id}/api-keys", headers={"Authorization": f"Bearer {p.admin.key}"}).status_code == 201

    deleted = p.admin.delete(f"/v1/departments/{member.id}/api-keys/{issued['api_key_id']}", expect=204)
    assert deleted.content == b""
    assert int(deleted.headers["X-Event-Position"]) > int(extra.headers["X-Event-Position"])
    refused = p.client.get("/v1/categories", headers=headers_extra)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert p.client.post("/v1/checks", headers=headers_extra, json=p.check_body()).status_code == 401
    assert p.client.get("/v1/categories", headers=headers_first).status_code == 200
    # Deleting it again, or an unknown key, or a key of an unknown department: 404.
    assert p.admin.delete(f"/v1/departments/{member.id}/api-keys/{issued['api_key_id']}", expect=404).json()["code"] == "not_found"
    p.admin.delete(f"/v1/departments/{member.id}/api-keys/0000000000000000", expect=404)
    p.admin.delete(f"/v1/departments/no-such-dept/api-keys/{member.key_id}", expect=404)
    p.admin.post("/v1/departments/no-such-dept/api-keys", json={}, expect=404)
    # Another department's key id does not name a key of this one.
    p.admin.delete(f"/v1/departments/{member.id}/api-keys/{p.approver.key_id}", expect=404)
    assert p.client.get("/v1/categories", headers={"Authorization": f"Bearer {p.approver.key}"}).status_code == 200


def test_rotating_the_seal_retires_the_previous_certificate(p: Province) -> None:
    issuer = p.department(f"rot-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    first_kid = issuer.kid
    check = p.raise_check(issuer=issuer.id)
    before = p.act(check["id"], "reply", issuer)
    assert before["proof"]["kid"] == first_kid

    response = p.admin.post(f"/v1/departments/{issuer.id}/keys", json={}, expect=201)
    rotated = response.json()
    assert int(response.headers["X-Event-Position"]) > 0
    assert set(rotated) == {"kid", "certificate_pem"}
    assert rotated["kid"] == kid_of_pem(rotated["certificate_pem"]) != first_kid

    listed = departments_by_id(p)[issuer.id]["certificates"]
    statuses = {item["kid"]: item["status"] for item in listed}
    assert statuses == {first_kid: "retired", rotated["kid"]: "active"}
    assert all(item["revoked_at"] is None for item in listed)

    # The previous certificate still verifies the proofs it signed; new replies use the new key.
    verdict = p.as_("approver").post("/v1/proofs/verify", json={"jws": before["proof"]["jws"]}, expect=200).json()
    assert verdict["valid"] is True and verdict["kid"] == first_kid
    second = p.raise_check(issuer=issuer.id)
    after = p.act(second["id"], "reply", issuer)
    assert after["proof"]["kid"] == rotated["kid"]
    assert p.as_("approver").post("/v1/proofs/verify", json={"jws": after["proof"]["jws"]}, expect=200).json()["valid"] is True


def test_revoking_the_current_key_now_stops_replies_until_rotation(p: Province) -> None:
    issuer = p.department(f"rev-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    name = issuer
    replied = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", name)
    pending = p.raise_check(issuer=issuer.id)
    response = p.admin.post(
        f"/v1/departments/{issuer.id}/keys/{issuer.kid}/revoke", json={"reason": "密钥泄露"}, expect=200
    )
    assert int(response.headers["X-Event-Position"]) > 0
    entry = response.json()
    assert set(entry) == {"kid", "certificate_pem", "status", "revoked_at"}
    assert entry["kid"] == issuer.kid and entry["status"] == "revoked"
    assert abs(parse_time(entry["revoked_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert departments_by_id(p)[issuer.id]["certificates"][0]["status"] == "revoked"

    problem = p.act(pending["id"], "reply", name, expect=409)
    assert problem["code"] == "no_signing_key"
    # A proof signed before the revocation still verifies.
    assert p.as_("approver").post("/v1/proofs/verify", json={"jws": replied["proof"]["jws"]}).json()["valid"] is True
    # Revoking it again is a conflict; after a rotation the department replies again.
    assert p.admin.post(
        f"/v1/departments/{issuer.id}/keys/{issuer.kid}/revoke", json={"reason": "again"}, expect=409
    ).json()["code"] == "conflict"
    new_kid = p.admin.post(f"/v1/departments/{issuer.id}/keys", json={}, expect=201).json()["kid"]
    assert p.act(pending["id"], "reply", name)["proof"]["kid"] == new_kid


def test_revocation_with_a_future_effective_at_leaves_the_key_usable(p: Province) -> None:
    issuer = p.department(f"fut-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    effective = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    entry = p.admin.post(
        f"/v1/departments/{issuer.id}/keys/{issuer.kid}/revoke",
        json={"reason": "计划停用", "effective_at": effective.strftime("%Y-%m-%dT%H:%M:%SZ")},
        expect=200,
    ).json()
    assert parse_time(entry["revoked_at"]) == effective
    assert entry["revoked_at"].endswith("Z")
    assert entry["status"] == "active"
    replied = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", issuer)
    assert replied["proof"]["kid"] == issuer.kid
    verdict = p.as_("auditor").post("/v1/proofs/verify", json={"jws": replied["proof"]["jws"]}).json()
    assert verdict["valid"] is True


def test_revocation_with_a_past_effective_at_invalidates_later_proofs_only(p: Province) -> None:
    issuer = p.department(f"past-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    name = issuer
    early = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", name)
    cut = datetime.now(UTC)
    late = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", name)
    entry = p.admin.post(
        f"/v1/departments/{issuer.id}/keys/{issuer.kid}/revoke",
        json={"reason": "泄露时间已知", "effective_at": format_time(cut)},
        expect=200,
    ).json()
    assert parse_time(entry["revoked_at"]) == cut and entry["status"] == "revoked"
    verify = p.as_("approver")
    assert verify.post("/v1/proofs/verify", json={"jws": early["proof"]["jws"]}).json()["valid"] is True
    verdict = verify.post("/v1/proofs/verify", json={"jws": late["proof"]["jws"]}).json()
    assert verdict["valid"] is False and "key_revoked" in verdict["reasons"]


def test_revocation_errors(p: Province) -> None:
    issuer = p.department(f"rerr-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    base = f"/v1/departments/{issuer.id}/keys"
    assert p.admin.post(f"{base}/{'0' * 64}/revoke", json={"reason": "x"}, expect=404).json()["code"] == "not_found"
    assert p.admin.post(f"{base}/{p.gulou.kid}/revoke", json={"reason": "x"}, expect=404).json()["code"] == "not_found"
    assert p.admin.post(f"/v1/departments/no-such-dept/keys/{issuer.kid}/revoke", json={"reason": "x"}, expect=404)
    p.admin.post("/v1/departments/no-such-dept/keys", json={}, expect=404)
    for body in ({"reason": "x", "effective_at": "yesterday"}, {"reason": "x", "effective_at": "2024-01-01T00:00:00"}, {}):
        assert p.admin.post(f"{base}/{issuer.kid}/revoke", json=body, expect=422).json()["code"] == "validation_error"
    # Nothing was revoked by the refused calls.
    assert departments_by_id(p)[issuer.id]["certificates"][0]["status"] == "active"


def test_keys_of_a_department_without_the_issuer_role_are_409_conflict(p: Province) -> None:
    assert p.admin.post(f"/v1/departments/{p.approver.id}/keys", json={}, expect=409).json()["code"] == "conflict"
    problem = p.admin.post(f"/v1/departments/{p.approver.id}/keys/{'a' * 64}/revoke", json={"reason": "x"}, expect=409)
    assert problem.json()["code"] == "conflict"
    assert p.admin.post(f"/v1/departments/{p.auditor.id}/keys", json={}, expect=409).json()["code"] == "conflict"


# -- categories ----------------------------------------------------------------------------------


def category_body(**overrides: object) -> dict:
    body = {
        "code": f"cat-{uuid.uuid4().hex[:8]}",
        "name": "亲属关系证明",
        "issuer_kind": "police",
        "modes": ["collaboration", "commitment"],
        "sla_hours": 48,
    }
    body.update(overrides)
    return body


def test_create_and_list_categories(p: Province) -> None:
    body = category_body(claims_schema={"type": "object", "properties": {"question": {"type": "string"}}})
    response = p.admin.post("/v1/categories", json=body, expect=201)
    assert int(response.headers["X-Event-Position"]) > 0
    assert response.json() == {**body, "status": "active"}
    plain = category_body(sla_hours=0.5, modes=["collaboration"])
    assert p.admin.post("/v1/categories", json=plain, expect=201).json() == {**plain, "claims_schema": None, "status": "active"}

    listed = {item["code"]: item for item in all_pages(p.as_("stranger"), "/v1/categories", 500)}
    assert listed[body["code"]] == {**body, "status": "active"}
    assert listed[CATEGORY]["name"] == "户籍证明"
    for who in ("admin", "gulou", "auditor"):
        p.as_(who).get("/v1/categories", expect=200)


def test_duplicate_category_code_is_409(p: Province) -> None:
    body = category_body()
    p.admin.post("/v1/categories", json=body, expect=201)
    assert p.admin.post("/v1/categories", json=category_body(code=body["code"]), expect=409).json()["code"] == "conflict"


@pytest.mark.parametrize(
    "overrides",
    [
        {"sla_hours": 0},
        {"sla_hours": -1},
        {"sla_hours": "24"},
        {"modes": []},
        {"modes": ["teleport"]},
        {"modes": ["collaboration", "collaboration"]},
        {"claims_schema": {"type": 5}},
        {"claims_schema": "object"},
        {"code": ""},
        {"name": None},
    ],
)
def test_invalid_category_bodies_are_422(p: Province, overrides: dict) -> None:
    assert p.admin.post("/v1/categories", json=category_body(**overrides), expect=422).json()["code"] == "validation_error"


def test_patch_category_fields(p: Province) -> None:
    body = category_body()
    p.admin.post("/v1/categories", json=body, expect=201)
    response = p.admin.patch(
        f"/v1/categories/{body['code']}",
        json={"name": "亲属关系证明（新）", "modes": ["collaboration", "data_sharing"], "sla_hours": 12.5},
        expect=200,
    )
    assert int(response.headers["X-Event-Position"]) > 0
    assert response.json() == {
        **body,
        "name": "亲属关系证明（新）",
        "modes": ["collaboration", "data_sharing"],
        "sla_hours": 12.5,
        "claims_schema": None,
        "status": "active",
    }
    listed = {item["code"]: item for item in all_pages(p.admin, "/v1/categories", 500)}
    assert listed[body["code"]]["sla_hours"] == 12.5
    # A new check uses the new SLA.
    check = p.raise_check(category=body["code"])
    assert parse_time(check["due_at"]) - parse_time(check["raised_at"]) == timedelta(hours=12.5)
    assert p.admin.patch("/v1/categories/no-such-category", json={"name": "x"}, expect=404).json()["code"] == "not_found"
    for bad in ({"name": None}, {"status": "deleted"}, {"sla_hours": 0}, {"code": "renamed"}, {"modes": []}):
        assert p.admin.patch(f"/v1/categories/{body['code']}", json=bad, expect=422).json()["code"] == "validation_error"


def test_retired_category_refuses_new_checks_until_reactivated(p: Province) -> None:
    body = category_body()
    p.admin.post("/v1/categories", json=body, expect=201)
    existing = p.raise_check(category=body["code"])
    retired = p.admin.patch(f"/v1/categories/{body['code']}", json={"status": "retired"}, expect=200).json()
    assert retired["status"] == "retired"
    problem = p.as_("approver").post("/v1/checks", json=p.check_body(category=body["code"]), expect=422).json()
    assert problem["code"] == "category_unavailable"
    # Checks raised before still live on.
    p.act(existing["id"], "accept", "gulou")
    p.admin.patch(f"/v1/categories/{body['code']}", json={"status": "active"}, expect=200)
    p.raise_check(category=body["code"])


def test_a_category_without_collaboration_is_unavailable(p: Province) -> None:
    body = category_body(modes=["commitment", "cancelled"])
    p.admin.post("/v1/categories", json=body, expect=201)
    problem = p.as_("approver").post("/v1/checks", json=p.check_body(category=body["code"]), expect=422).json()
    assert problem["code"] == "category_unavailable"
    p.admin.patch(f"/v1/categories/{body['code']}", json={"modes": ["collaboration"]}, expect=200)
    p.raise_check(category=body["code"])


def test_claims_schema_is_enforced_on_new_checks(p: Province) -> None:
    body = category_body()
    p.admin.post("/v1/categories", json=body, expect=201)
    schema = {
        "type": "object",
        "required": ["question"],
        "properties": {"question": {"type": "string", "minLength": 2}},
    }
    assert p.admin.patch(f"/v1/categories/{body['code']}", json={"claims_schema": schema}, expect=200).json()["claims_schema"] == schema
    for claims in ({}, {"question": 5}, {"question": "x"}):
        problem = p.as_("approver").post(
            "/v1/checks", json=p.check_body(category=body["code"], claims=claims), expect=422
        ).json()
        assert problem["code"] == "invalid_claims"
    p.raise_check(category=body["code"], claims={"question": "是否同一人"})
    # Clearing the schema lifts the rule.
    assert p.admin.patch(f"/v1/categories/{body['code']}", json={"claims_schema": None}, expect=200).json()["claims_schema"] is None
    p.raise_check(category=body["code"], claims={})


# -- pagination ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/departments", "/v1/categories"])
def test_pagination_with_limit_1_visits_everything_once(p: Province, path: str) -> None:
    everything = p.admin.get(path, params={"limit": 500}, expect=200).json()
    assert everything["next_cursor"] is None
    key = "id" if path.endswith("departments") else "code"
    paged = all_pages(p.admin, path, 1)
    assert [item[key] for item in paged] == [item[key] for item in everything["items"]]
    assert len({item[key] for item in paged}) == len(paged) >= 2
    first = p.admin.get(path, params={"limit": 1}, expect=200).json()
    assert len(first["items"]) == 1 and isinstance(first["next_cursor"], str)
    # The default page is 50 items at most.
    assert len(p.admin.get(path, expect=200).json()["items"]) == min(50, len(paged))


@pytest.mark.parametrize("path", ["/v1/departments", "/v1/categories", "/v1/checks", "/v1/inbox"])
@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5"])
def test_limit_outside_1_to_500_is_422(p: Province, path: str, limit: str) -> None:
    who = "gulou" if path == "/v1/inbox" else "auditor"
    problem = p.as_(who).get(path, params={"limit": limit}, expect=422).json()
    assert problem["code"] == "validation_error"


@pytest.mark.parametrize("path", ["/v1/departments", "/v1/categories"])
@pytest.mark.parametrize("cursor", ["!!!!", "not-a-cursor", "eyJ4IjoxfQ", "%%%"])
def test_malformed_cursor_is_422(p: Province, path: str, cursor: str) -> None:
    problem = p.admin.get(path, params={"cursor": cursor}, expect=422).json()
    assert problem["code"] == "validation_error"


def test_limit_500_is_allowed(p: Province) -> None:
    for path in ("/v1/departments", "/v1/categories", "/v1/checks"):
        p.as_("auditor").get(path, params={"limit": 500}, expect=200)


def test_a_deleted_key_stops_working_in_every_worker_at_once(p: Province) -> None:
    """A second process on the same store (another worker) refuses the key as soon as it is deleted."""
    member = p.department(f"workers-{uuid.uuid4().hex[:4]}", roles=["approver"], kind="real-estate", region="350111")
    services = build_services(p.services.settings.database_url, Path(p.services.settings.key_dir))
    try:
        other = TestClient(create_app(services, start_views=False))
        headers = {"Authorization": f"Bearer {member.key}"}
        assert other.get("/v1/categories", headers=headers).status_code == 200  # cached there now
        p.admin.delete(f"/v1/departments/{member.id}/api-keys/{member.key_id}", expect=204)
        refused = other.get("/v1/categories", headers=headers)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    finally:
        services.close()


def test_a_patch_that_changes_nothing_answers_the_categorys_last_position(province: Province) -> None:
    code = "no-op-category"
    created = province.admin.post(
        "/v1/categories",
        json={"code": code, "name": "无变化", "issuer_kind": "police", "modes": ["collaboration"], "sla_hours": 24},
        expect=201,
    )
    unchanged = province.admin.patch(f"/v1/categories/{code}", json={"name": "无变化"}, expect=200)
    assert int(unchanged.headers["X-Event-Position"]) == int(created.headers["X-Event-Position"]) > 0
