"""API.md §1 and §9: errors are RFC 9457 problem details with stable codes, in the contract's order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Province, live_server

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
LIMIT = 64 * 1024
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    problem = response.json()
    assert PROBLEM_FIELDS <= set(problem)
    assert problem["status"] == status and problem["code"] == code
    assert isinstance(problem["type"], str) and problem["type"]
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str)
    assert_no_trace(response)
    assert_security_headers(response)
    return problem


def assert_no_trace(response: httpx.Response) -> None:
    text = response.text
    for marker in ("Traceback", 'File "', "<html", "<!DOCTYPE", ".py\", line"):
        assert marker not in text, text[:500]


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


@pytest.fixture(scope="module")
def server(shared_province: Province) -> Iterator[str]:
    with live_server(shared_province.app) as url:
        yield url


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


# -- authentication and authorization ------------------------------------------------------------


def test_missing_key_is_401(p: Province) -> None:
    response = p.client.get("/v1/checks")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    for headers in ({"Authorization": "Bearer"}, {"Authorization": "Bearer   "}, {"Authorization": "Basic YWRtaW46eA=="}, {"Authorization": p.approver.key}):
        assert_problem(p.client.get("/v1/checks", headers=headers), 401, "unauthenticated")


def test_unknown_key_is_401(p: Province) -> None:
    for key in ("nope", "nck_fz-estate_0000000000000000_xxxxxxxx", p.approver.key + "x", p.approver.key[:-1], "admin-" + "y" * 40, "nck_Bad Id_1_2", "nck_" + "a" * 300 + "_1_2"):
        assert_problem(p.roaming(key).get("/v1/departments"), 401, "unauthenticated")


def test_role_not_allowed_is_403(p: Province) -> None:
    assert_problem(p.as_("approver").post("/v1/departments", json={}), 403, "forbidden")
    assert_problem(p.as_("auditor").post("/v1/checks", json=p.check_body()), 403, "forbidden")
    assert_problem(p.as_("approver").get("/v1/inbox"), 403, "forbidden")
    assert_problem(p.admin.get("/v1/checks"), 403, "forbidden")
    assert_problem(p.as_("gulou").get("/v1/audit/events"), 403, "forbidden")


def test_another_departments_check_is_404_not_403(p: Province) -> None:
    check = p.raise_check()
    for who in ("stranger", "city", "civil"):
        assert_problem(p.as_(who).get(f"/v1/checks/{check['id']}"), 404, "not_found")
        assert_problem(p.as_(who).get(f"/v1/checks/{check['id']}/history"), 404, "not_found")
    assert_problem(p.as_("stranger").post(f"/v1/checks/{check['id']}/withdraw", json={}), 404, "not_found")
    assert_problem(p.as_("city").post(f"/v1/checks/{check['id']}/accept", json={}), 404, "not_found")
    # The answer is the same as for a check that does not exist.
    unknown = p.as_("stranger").get("/v1/checks/00000000-0000-4000-8000-000000000000")
    known = p.as_("stranger").get(f"/v1/checks/{check['id']}")
    assert {k: v for k, v in unknown.json().items() if k != "detail"} == {k: v for k, v in known.json().items() if k != "detail"}


def test_unknown_route_is_404(p: Province) -> None:
    assert_problem(p.as_("approver").get("/v1/nothing-here"), 404, "not_found")
    assert_problem(p.as_("approver").post("/v1/checks/x/teleport", json={}), 404, "not_found")
    assert_problem(p.client.get("/nothing-here"), 404, "not_found")
    # Under /v1 the key is asked for first.
    assert_problem(p.client.get("/v1/nothing-here"), 401, "unauthenticated")


def test_wrong_method_is_405_method_not_allowed(p: Province) -> None:
    for method, path in (("DELETE", "/v1/checks"), ("PUT", "/v1/categories"), ("PUT", "/v1/proofs/verify"), ("POST", "/v1/inbox")):
        response = p.as_("approver").request(method, path)
        problem = assert_problem(response, 405, "method_not_allowed")
        assert problem["title"]
        assert "allow" in response.headers
    assert_problem(p.client.post("/healthz"), 405, "method_not_allowed")


# -- bodies --------------------------------------------------------------------------------------


def post_raw(p: Province, path: str, content: bytes, content_type: str | None = "application/json", who: str = "approver") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return p.as_(who).request("POST", path, content=content, headers=headers)


def test_malformed_json_is_400(p: Province) -> None:
    for body in (b"{", b'{"category": }', b"{'a': 1}", b'{"a": 1} trailing', b'{"valid_days": NaN}', b'{"a": Infinity}', b"\x00"):
        assert_problem(post_raw(p, "/v1/checks", body), 400, "malformed_json")


def test_duplicate_json_keys_are_400(p: Province) -> None:
    assert_problem(post_raw(p, "/v1/checks", b'{"category": "a", "category": "b"}'), 400, "malformed_json")
    nested = b'{"matter": {"code": "a", "code": "b"}}'
    assert_problem(post_raw(p, "/v1/checks", nested), 400, "malformed_json")


def test_invalid_utf8_is_400(p: Province) -> None:
    assert_problem(post_raw(p, "/v1/checks", b'{"purpose": "\xff\xfe"}'), 400, "malformed_json")
    assert_problem(post_raw(p, "/v1/checks", '{"purpose": "不动产"}'.encode("gb18030")), 400, "malformed_json")


def test_deeply_nested_json_is_never_a_500(p: Province) -> None:
    for body in (b"[" * 60000, b'{"a":' * 10000 + b"1" + b"}" * 10000, b"[" * 30000 + b"]" * 30000):
        response = post_raw(p, "/v1/checks", body)
        assert response.status_code in (400, 422), response.status_code
        assert_problem(response, response.status_code, "malformed_json" if response.status_code == 400 else "validation_error")
    huge = post_raw(p, "/v1/checks", b"[" * 100000)
    assert huge.status_code in (400, 413, 422)
    assert_no_trace(huge)


def test_a_body_that_is_no_object_is_422(p: Province) -> None:
    for body in (b"[]", b"1", b'"text"', b"null"):
        assert_problem(post_raw(p, "/v1/checks", body), 422, "validation_error")


def test_wrong_content_type_is_415(p: Province) -> None:
    body = b'{"jws": "x"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        assert_problem(post_raw(p, "/v1/proofs/verify", body, content_type), 415, "unsupported_media_type")
    for content_type in ("application/json", "application/json; charset=utf-8", "APPLICATION/JSON"):
        assert post_raw(p, "/v1/proofs/verify", body, content_type).status_code == 200


def test_body_over_64_kib_is_413_with_content_length(p: Province) -> None:
    padding = b" " * (LIMIT + 1 - len(b'{"jws": "x"}'))
    over = b'{"jws": "x"}' + padding
    assert len(over) == LIMIT + 1
    assert_problem(post_raw(p, "/v1/proofs/verify", over), 413, "payload_too_large")
    exact = over[:-1]
    assert post_raw(p, "/v1/proofs/verify", exact).status_code == 200
    assert_problem(post_raw(p, "/v1/checks", b"x" * (10 * LIMIT)), 413, "payload_too_large")


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    yield b'{"jws": "'
    sent += 9
    while sent < total - 2:
        chunk = b"a" * min(size, total - 2 - sent)
        sent += len(chunk)
        yield chunk
    yield b'"}'


def test_body_over_64_kib_is_413_when_chunked(p: Province, server: str) -> None:
    headers = {"Authorization": f"Bearer {p.approver.key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server, timeout=30) as client:
        response = client.post("/v1/proofs/verify", content=_chunks(LIMIT + 100), headers=headers)
        assert "content-length" not in response.request.headers
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert_problem(response, 413, "payload_too_large")
        # Declared too large: refused before the body is read.
        big = client.post("/v1/proofs/verify", content=b" " * (LIMIT + 1), headers=headers)
        assert_problem(big, 413, "payload_too_large")
        # Small chunked bodies pass.
        small = client.post("/v1/proofs/verify", content=_chunks(2000), headers=headers)
        assert small.status_code == 200 and small.json()["valid"] is False


# -- precedence (API.md §1) ----------------------------------------------------------------------


def test_no_key_and_a_huge_body_is_401(p: Province, server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        response = client.post("/v1/checks", content=b" " * (LIMIT * 4), headers={"Content-Type": "application/json"})
        assert_problem(response, 401, "unauthenticated")
    assert_problem(post_raw(p, "/v1/checks", b" " * (LIMIT * 4), who="anonymous"), 401, "unauthenticated")


def test_valid_key_wrong_role_and_huge_body_is_413(p: Province) -> None:
    assert_problem(post_raw(p, "/v1/departments", b" " * (LIMIT + 1), who="auditor"), 413, "payload_too_large")
    assert_problem(post_raw(p, "/v1/checks", b"[" * (LIMIT + 1), who="gulou"), 413, "payload_too_large")


def test_wrong_role_and_malformed_body_is_403(p: Province) -> None:
    assert_problem(post_raw(p, "/v1/checks", b"{", who="auditor"), 403, "forbidden")
    assert_problem(post_raw(p, "/v1/departments", b"\xff", who="approver"), 403, "forbidden")
    assert_problem(post_raw(p, "/v1/categories", b"{}", "text/plain", who="gulou"), 403, "forbidden")
    check = p.raise_check()
    assert_problem(post_raw(p, f"/v1/checks/{check['id']}/accept", b"{", who="approver"), 403, "forbidden")


def test_not_visible_and_malformed_body_is_404(p: Province) -> None:
    check = p.raise_check()
    assert_problem(post_raw(p, f"/v1/checks/{check['id']}/accept", b"{", who="city"), 404, "not_found")
    assert_problem(post_raw(p, f"/v1/checks/{check['id']}/withdraw", b"{", "text/plain", who="stranger"), 404, "not_found")
    assert_problem(post_raw(p, "/v1/departments/no-such-dept/keys", b"{", who="admin"), 404, "not_found")
    assert_problem(p.admin.request("PATCH", "/v1/categories/no-such", content=b"{", headers={"Content-Type": "application/json"}), 404, "not_found")


def test_media_type_and_json_come_before_validation_and_state(p: Province) -> None:
    check = p.raise_check()
    p.act(check["id"], "withdraw", "approver")
    path = f"/v1/checks/{check['id']}/reply"
    # The check is withdrawn (409) and the body is wrong: the body's failure decides.
    assert_problem(post_raw(p, path, b'{"conclusion": "confirmed"}', "text/plain", who="gulou"), 415, "unsupported_media_type")
    assert_problem(post_raw(p, path, b'{"conclusion": ', who="gulou"), 400, "malformed_json")
    assert_problem(post_raw(p, path, b'{"conclusion": "confirmed", "valid_days": 0}', who="gulou"), 422, "validation_error")
    assert_problem(post_raw(p, path, b'{"conclusion": "confirmed"}', who="gulou"), 409, "invalid_transition")


# -- headers and traces --------------------------------------------------------------------------


def test_security_headers_on_every_kind_of_answer(p: Province) -> None:
    responses = [
        p.client.get("/healthz"),
        p.client.get("/v1/trust/root"),
        p.client.get("/openapi.json"),
        p.client.get("/v1/checks"),
        p.as_("approver").get("/v1/checks"),
        p.as_("approver").post("/v1/checks", json=p.check_body()),
        p.as_("approver").get("/v1/nothing"),
    ]
    for response in responses:
        assert_security_headers(response)
    api = p.as_("approver").get("/v1/checks")
    assert api.headers["cache-control"] == "no-store"


def test_an_internal_error_is_a_problem_without_a_trace(p: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /work/main/domain/platform.py")

    monkeypatch.setattr(p.services.platform, "catalogue", boom)
    client = TestClient(p.app, raise_server_exceptions=False)
    response = client.get("/v1/categories", headers=auth(p.approver.key))
    assert response.status_code == 500
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    problem = response.json()
    assert PROBLEM_FIELDS <= set(problem) and problem["status"] == 500
    assert "secret internal detail" not in response.text and "RuntimeError" not in response.text
    assert_no_trace(response)
    assert_security_headers(response)
