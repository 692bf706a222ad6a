"""API.md §8: health, readiness, metrics, the OpenAPI description, and the JSON access log."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from store.database import DatabaseUnavailable
from tests.api.conftest import Province
from tests.bodies import APPLICANT, OTHER_NUMBER

# Every operation of the contract (API.md §3-§8), as OpenAPI names its paths.
CONTRACT: set[tuple[str, str]] = {
    ("post", "/v1/departments"),
    ("get", "/v1/departments"),
    ("patch", "/v1/departments/{department_id}"),  # API.md §10
    ("post", "/v1/departments/{department_id}/api-keys"),
    ("delete", "/v1/departments/{department_id}/api-keys/{api_key_id}"),
    ("post", "/v1/departments/{department_id}/keys"),
    ("post", "/v1/departments/{department_id}/keys/{kid}/revoke"),
    ("post", "/v1/categories"),
    ("get", "/v1/categories"),
    ("patch", "/v1/categories/{code}"),
    ("post", "/v1/checks"),
    ("get", "/v1/checks"),
    ("get", "/v1/inbox"),
    ("get", "/v1/checks/{check_id}"),
    ("get", "/v1/checks/{check_id}/history"),
    *(("post", f"/v1/checks/{{check_id}}/{command}") for command in (
        "accept", "request-info", "supply-info", "forward", "reply", "decline", "withdraw", "close")),
    ("get", "/v1/proofs/{proof_id}"),
    ("post", "/v1/proofs/verify"),
    ("post", "/v1/proofs/{proof_id}/revoke"),
    ("get", "/v1/trust/root"),
    ("get", "/v1/coverage"),
    ("get", "/v1/audit/events"),
    ("get", "/v1/audit/checkpoints/latest"),
    ("get", "/v1/audit/checkpoints"),
    ("get", "/v1/audit/proofs/inclusion"),
    ("get", "/v1/audit/proofs/consistency"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}
PUBLIC = {("get", "/v1/trust/root"), ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


def test_healthz(p: Province) -> None:
    response = p.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz(p: Province) -> None:
    p.settle()
    response = p.client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_metrics_count_requests_by_route_and_status(p: Province) -> None:
    check = p.raise_check()
    p.as_("approver").get(f"/v1/checks/{check['id']}", expect=200)
    p.as_("stranger").get(f"/v1/checks/{check['id']}", expect=404)
    p.settle()
    response = p.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text

    def sample(name: str, **labels: str) -> float:
        for line in text.splitlines():
            if not line.startswith((name + "{", name + " ")):
                continue
            series, value = line.rsplit(" ", 1)
            found = dict(re.findall(r'(\w+)="([^"]*)"', series))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(value)
        raise AssertionError(f"no {name} {labels} in metrics")

    assert sample("nocert_http_requests_total", route="/v1/checks", status="201", method="POST") >= 1
    assert sample("nocert_http_requests_total", route="/v1/checks/{check_id}", status="200") >= 1
    assert sample("nocert_http_requests_total", route="/v1/checks/{check_id}", status="404") >= 1
    assert sample("nocert_http_request_duration_seconds_count", route="/v1/checks", status="201") >= 1
    assert check["id"] not in text  # routes are templates, never ids
    assert "nocert_events_recorded" in text and "nocert_view_lag_events" in text
    assert "nocert_checkpoint_tree_size" in text
    assert sample("nocert_events_recorded") >= p.position() - 5
    assert sample("nocert_checkpoint_tree_size") >= 5


def test_openapi_describes_every_operation(p: Province) -> None:
    response = p.client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    served = {(method, path) for path, item in schema["paths"].items() for method in item if method != "parameters"}
    assert CONTRACT <= served, CONTRACT - served
    components = schema["components"]["schemas"]

    def resolve(ref: str) -> dict[str, Any]:
        assert ref.startswith("#/components/schemas/"), ref
        return components[ref.rsplit("/", 1)[1]]

    assert set(resolve("#/components/schemas/Problem")["properties"]) >= {"type", "title", "status", "detail", "code"}
    for method, path in CONTRACT:
        operation = schema["paths"][path][method]
        if method in ("post", "patch"):
            body = operation.get("requestBody")
            assert body, (method, path)
            resolve(body["content"]["application/json"]["schema"]["$ref"])
        if path.startswith("/v1") and (method, path) not in PUBLIC:
            problems = {
                status: answer for status, answer in operation["responses"].items() if status.startswith(("4", "5"))
            }
            assert "401" in problems, (method, path)
            for status, answer in problems.items():
                content = answer.get("content", {})
                assert "application/problem+json" in content, (method, path, status)
                resolve(content["application/problem+json"]["schema"]["$ref"])
    for method, path in CONTRACT - PUBLIC:
        if path.startswith("/v1"):
            assert {"bearer": []} in schema["paths"][path][method].get("security", schema.get("security", [])), (method, path)


def test_docs(p: Province) -> None:
    response = p.client.get("/docs")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]


def test_one_json_access_line_per_request(p: Province, caplog: pytest.LogCaptureFixture) -> None:
    check = p.raise_check()
    caplog.set_level(logging.INFO, logger="nocert.access")
    caplog.clear()
    calls = [
        (p.as_("approver"), "POST", "/v1/checks", p.check_body(), 201),
        (p.as_("approver"), "GET", f"/v1/checks/{check['id']}", None, 200),
        (p.as_("gulou"), "POST", f"/v1/checks/{check['id']}/accept", {}, 200),
        (p.anonymous, "GET", "/v1/checks", None, 401),
        (p.as_("stranger"), "GET", f"/v1/checks/{check['id']}/history", None, 404),
        (p.admin, "GET", "/v1/departments", None, 200),
        (p.anonymous, "GET", "/healthz", None, 200),
    ]
    for caller, method, path, body, status in calls:
        caller.request(method, path, json=body, params={"id_number": APPLICANT}, expect=status)
    lines = [record for record in caplog.records if record.name == "nocert.access"]
    assert len(lines) == len(calls)
    entries = [json.loads(record.getMessage()) for record in lines]
    expected = [
        ("POST", "/v1/checks", 201, "fz-estate"),
        ("GET", "/v1/checks/{check_id}", 200, "fz-estate"),
        ("POST", "/v1/checks/{check_id}/accept", 200, "fz-gulou-police"),
        ("GET", "/v1/checks", 401, None),
        ("GET", "/v1/checks/{check_id}/history", 404, "xm-estate"),
        ("GET", "/v1/departments", 200, "@admin"),
        ("GET", "/healthz", 200, None),
    ]
    for entry, (method, route, status, principal) in zip(entries, expected, strict=True):
        assert entry["method"] == method and entry["route"] == route
        assert entry["status"] == status and entry["principal"] == principal
        assert isinstance(entry["latency_ms"], (int, float)) and entry["latency_ms"] >= 0
    text = "\n".join(record.getMessage() for record in lines)
    for secret in [member.key for member in p.members.values()] + [p.admin.key, APPLICANT, OTHER_NUMBER, check["id"]]:
        assert secret not in text


def test_an_unknown_key_is_never_logged(p: Province, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    guess = "nck_fz-estate_0123456789abcdef_" + "s" * 43
    p.roaming(guess).get("/v1/checks", expect=401)
    p.roaming(p.approver.key + "x").get("/v1/checks", expect=401)
    assert all(guess not in record.getMessage() and p.approver.key not in record.getMessage() for record in caplog.records)


def test_readyz_is_503_when_the_store_is_unreachable_or_the_views_lag(p: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable() -> int:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(p.services.views, "lag", unreachable)
    response = p.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unavailable" and response.json()["detail"]
    monkeypatch.setattr(p.services.views, "lag", lambda: 1001)
    lagging = p.client.get("/readyz")
    assert lagging.status_code == 503 and "1001" in lagging.json()["detail"]
    monkeypatch.setattr(p.services.views, "lag", lambda: 1000)
    assert p.client.get("/readyz").status_code == 200
    # Liveness does not depend on the store.
    monkeypatch.setattr(p.services.views, "lag", unreachable)
    assert p.client.get("/healthz").status_code == 200
    assert p.client.get("/metrics").status_code == 200


def test_an_unreachable_store_is_503_unavailable(p: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    check = p.raise_check()

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(p.services.platform, "check", unreachable)
    monkeypatch.setattr(p.services.platform, "cached_check", lambda check_id: None)  # the command reads the store
    for response in (
        p.as_("approver").get(f"/v1/checks/{check['id']}"),
        p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}),
    ):
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unavailable"
        assert "Traceback" not in response.text
