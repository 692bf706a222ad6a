"""The OpenAPI description is good enough for client generators (issue 12 item 2): it validates, declares
the contract's headers, formats and text answers, names every problem code each status can carry, and has
an example for every body that the demo province accepts as it is (sent here on both stores)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import build
from api.demo import run_demo
from api.examples import EXAMPLES
from api.openapi import BODY_MODELS, QUERIES
from tests.api.conftest import ADMIN_KEY, Province, settings_for

REQUIRE_TOOLS = os.environ.get("NOCERT_REQUIRE_POSTGRES") == "1"  # CI: a missing tool fails instead of skipping
METHODS = ("get", "put", "post", "delete", "patch")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("openapi")
    services = build(settings_for(f"sqlite:///{directory}/nocert.db", directory / "keys"))
    try:
        document: dict[str, Any] = create_app(services, start_views=False).openapi()
        return document
    finally:
        services.close()


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return resolve(spec, spec["components"]["schemas"][schema["$ref"].rpartition("/")[2]])
    return schema


def variants(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema, or the non-null branches of its anyOf, resolved."""
    schema = resolve(spec, schema)
    if "anyOf" in schema:
        return [resolve(spec, branch) for branch in schema["anyOf"] if branch.get("type") != "null"]
    return [schema]


def test_the_description_validates(spec: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator") if not REQUIRE_TOOLS else __import__("openapi_spec_validator")
    validator.validate(spec)


def test_operation_ids_are_short_stable_and_unique(spec: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{2,39}", name) for name in ids), ids
    by_route = {(method, path): operation["operationId"] for method, path, operation in operations(spec)}
    assert by_route[("post", "/v1/checks")] == "raise_check"
    assert by_route[("post", "/v1/checks/{check_id}/accept")] == "accept_check"
    assert by_route[("get", "/v1/coverage")] == "get_coverage"
    assert by_route[("patch", "/v1/departments/{department_id}")] == "change_department"


def test_every_operation_has_a_description(spec: dict[str, Any]) -> None:
    missing = [(m, p) for m, p, operation in operations(spec) if len(operation.get("description", "").strip()) < 10]
    assert not missing


def test_every_post_takes_an_idempotency_key_and_every_command_answers_its_event_position(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        if not path.startswith("/v1") or not operation.get("security", [{}]):
            continue
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
        if method == "post":
            (key,) = [p for p in headers if p["name"] == "Idempotency-Key"]
            assert key["required"] is False and key["schema"]["maxLength"] == 255
        if method in ("post", "patch", "delete") and operation["operationId"] not in QUERIES:  # record no event
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    assert answer["headers"]["X-Event-Position"]["schema"]["type"] == "integer", (method, path)


def test_times_are_date_time_and_ids_uuid(spec: dict[str, Any]) -> None:
    times = ids = 0
    for name, schema in spec["components"]["schemas"].items():
        for field, definition in schema.get("properties", {}).items():
            formats = {branch.get("format") for branch in variants(spec, definition)}
            if field == "at" or field.endswith("_at"):
                assert formats == {"date-time"}, (name, field)
                times += 1
            if field in ("check_id", "stream_id") or (field == "id" and name in ("Check", "CheckProof", "ProofRecord")):
                assert formats == {"uuid"}, (name, field)
                ids += 1
    assert times >= 12 and ids >= 6
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("check_id", "proof_id"):
                assert parameter["schema"]["format"] == "uuid", (method, path)
            if parameter["name"] == "as_of":
                assert {b.get("format") for b in variants(spec, parameter["schema"])} == {"date-time"}


def test_the_check_is_typed_as_the_request_side_is(spec: dict[str, Any]) -> None:
    check = spec["components"]["schemas"]["Check"]["properties"]
    assert check["matter"] == {"$ref": "#/components/schemas/Matter"}
    assert check["consent"] == {"$ref": "#/components/schemas/Consent"}
    applicant = resolve(spec, check["applicant"])["properties"]
    assert set(applicant) == set(spec["components"]["schemas"]["Applicant"]["properties"]) == {"name", "id_number"}
    for field, model in (("proof", "CheckProof"), ("decline", "CheckDecline")):
        assert {"$ref": f"#/components/schemas/{model}"} in check[field]["anyOf"]
    assert check["info_requests"]["items"] == {"$ref": "#/components/schemas/InfoRequestItem"}
    decline = spec["components"]["schemas"]["CheckDecline"]["properties"]["reason_code"]
    assert decline == {"$ref": "#/components/schemas/DeclineReason"}


def problem_codes(operation: dict[str, Any], status: int) -> list[str]:
    answer = operation["responses"].get(str(status))
    return [] if answer is None else answer["x-problem-codes"]


def test_every_status_lists_every_code_it_can_carry(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    raise_check = paths["/v1/checks"]["post"]
    assert set(problem_codes(raise_check, 422)) == {
        "validation_error", "invalid_id_number", "invalid_claims", "unknown_category", "category_unavailable",
        "no_route", "ambiguous_route", "invalid_issuer", "idempotency_mismatch",
    }
    assert set(problem_codes(raise_check, 409)) >= {"idempotency_in_progress", "concurrent_update"}
    assert set(problem_codes(paths["/v1/checks/{check_id}/reply"]["post"], 409)) >= {
        "invalid_transition", "concurrent_update", "no_signing_key", "idempotency_in_progress",
    }
    assert set(problem_codes(paths["/v1/checks/{check_id}/forward"]["post"], 422)) >= {"invalid_issuer", "validation_error"}
    assert problem_codes(paths["/v1/checks"]["get"], 503) == ["unavailable", "not_caught_up"] or set(
        problem_codes(paths["/v1/checks"]["get"], 503)
    ) == {"unavailable", "not_caught_up"}
    for method, path, operation in operations(spec):
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")):
                codes = answer["x-problem-codes"]
                assert codes and all(f"`{code}`" in answer["description"] for code in codes), (method, path, status)
                assert answer["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        if "requestBody" in operation:
            for status, code in ((400, "malformed_json"), (413, "payload_too_large"), (415, "unsupported_media_type")):
                assert code in problem_codes(operation, status), (method, path)
    assert set(problem_codes(paths["/v1/departments"]["post"], 422)) >= {"invalid_uscc", "validation_error"}
    assert "forbidden" not in problem_codes(paths["/v1/coverage"]["get"], 403)


def test_text_answers_have_a_schema_and_their_media_type(spec: dict[str, Any], p: Province) -> None:
    root = spec["paths"]["/v1/trust/root"]["get"]["responses"]["200"]["content"]
    assert root["application/x-pem-file"]["schema"] == {"type": "string"}
    assert p.anonymous.get("/v1/trust/root").headers["content-type"] == "application/x-pem-file"
    as_text = p.anonymous.get("/v1/trust/root", headers={"Accept": "text/plain"})
    assert as_text.headers["content-type"].startswith("text/plain") and "BEGIN CERTIFICATE" in as_text.text
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    (media_type,) = metrics
    assert metrics[media_type]["schema"] == {"type": "string"}
    assert p.anonymous.get("/metrics").headers["content-type"] == media_type


def test_every_body_has_an_example_of_its_own_model(spec: dict[str, Any]) -> None:
    models = {model.__name__: model for model in BODY_MODELS}
    for method, path, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        media = operation["requestBody"]["content"]["application/json"]
        name = media["schema"]["$ref"].rpartition("/")[2]
        assert media["example"] == EXAMPLES[name], (method, path)
        models[name].model_validate(media["example"])


@pytest.fixture
def p(sqlite_province: Province) -> Province:
    return sqlite_province


def test_a_wrong_method_is_405_with_every_method_of_the_path(spec: dict[str, Any], p: Province) -> None:
    for path, item in spec["paths"].items():
        declared = {method.upper() for method in item if method in METHODS}
        concrete = path.format(
            department_id="fz-gulou-police", api_key_id="k", kid="0" * 64, code="household-registration",
            check_id="00000000-0000-4000-8000-000000000000", proof_id="00000000-0000-4000-8000-000000000000",
            subscription_id="00000000-0000-4000-8000-000000000000", login="wang.li",
        ) if "{" in path else path
        wrong = next(method for method in ("PUT", "DELETE", "PATCH", "POST") if method not in declared)
        response = p.admin.request(wrong, concrete)
        assert response.status_code == 405, (wrong, path, response.text)
        assert response.json()["code"] == "method_not_allowed"
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        # every method some path template routes this path to (GET /v1/proofs/verify is a proof id)
        routed = {
            method.upper()
            for template, other in spec["paths"].items()
            if re.fullmatch(re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(template)), concrete)
            for method in other
            if method in METHODS
        }
        assert declared <= allowed == routed, (path, allowed)


# -- every example, sent as it is to the demo province -----------------------------------------------

DEMO_APPROVER, DEMO_ISSUER, DEMO_AUDITOR = "fz-admin-service", "fz-gulou-police", "fj-audit"


def test_every_example_succeeds_against_the_demo_province(spec: dict[str, Any], durable_database_url: str, tmp_path: Path) -> None:
    services = build(settings_for(durable_database_url, tmp_path / "keys", webhook_allow="https://approval.fuzhou.example/"))
    try:
        keys = {department.id: department.api_key for department in run_demo(services.platform, 3)}
        keys["admin"] = ADMIN_KEY
        with TestClient(create_app(services)) as client:
            sent = _send_examples(spec, client, keys)
    finally:
        services.close()
    with_body = {operation["operationId"] for _, _, operation in operations(spec) if "requestBody" in operation}
    assert with_body <= sent, f"no scenario sends the example of {sorted(with_body - sent)}"


def _send_examples(spec: dict[str, Any], client: TestClient, keys: dict[str, str]) -> set[str]:
    by_id = {operation["operationId"]: (method, path, operation) for method, path, operation in operations(spec)}
    sent: set[str] = set()

    def send(operation_id: str, who: str, **path_params: str) -> dict[str, Any]:
        method, path, operation = by_id[operation_id]
        example = operation["requestBody"]["content"]["application/json"]["example"]
        response = client.request(
            method.upper(), path.format(**path_params), json=example, headers={"Authorization": f"Bearer {keys[who]}"}
        )
        assert 200 <= response.status_code < 300, (operation_id, response.status_code, response.text)
        if operation_id not in ("verify_proof", "subject_accesses"):  # queries, which record no event
            assert response.headers["X-Event-Position"].isdigit(), operation_id
        sent.add(operation_id)
        answer: dict[str, Any] = response.json()
        return answer

    send("create_department", "admin")
    send("change_department", "admin", department_id="fz-taijiang-police")
    send("issue_api_key", "admin", department_id="fz-police")
    send("rotate_seal_key", "admin", department_id="fz-police")
    kid = send("rotate_seal_key", "admin", department_id="fz-police")["kid"]
    send("revoke_seal_key", "admin", department_id="fz-police", kid=kid)
    send("add_officer", "admin", department_id="fz-police")
    send("create_category", "admin")
    send("change_category", "admin", code="household-registration")
    check = send("raise_check", DEMO_APPROVER)["id"]
    send("accept_check", DEMO_ISSUER, check_id=check)
    send("request_info", DEMO_ISSUER, check_id=check)
    send("supply_info", DEMO_APPROVER, check_id=check)
    proof = send("reply_check", DEMO_ISSUER, check_id=check)["proof"]["id"]
    send("revoke_proof", DEMO_ISSUER, proof_id=proof)
    send("close_check", DEMO_APPROVER, check_id=check)
    send("forward_check", DEMO_ISSUER, check_id=send("raise_check", DEMO_APPROVER)["id"])
    send("decline_check", DEMO_ISSUER, check_id=send("raise_check", DEMO_APPROVER)["id"])
    send("withdraw_check", DEMO_APPROVER, check_id=send("raise_check", DEMO_APPROVER)["id"])
    send("urge_check", DEMO_APPROVER, check_id=send("raise_check", DEMO_APPROVER)["id"])
    send("create_subscription", DEMO_APPROVER)
    assert send("verify_proof", DEMO_AUDITOR)["valid"] is False
    send("subject_accesses", DEMO_AUDITOR)
    assert send("erase_subject", "admin")["checks"] >= 1
    return sent


def test_x_officer_is_declared_on_every_command_a_department_gives_for_an_officer(spec: dict[str, Any]) -> None:
    """API.md §12: department systems name the acting officer with X-Officer on check and proof commands."""
    named = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if "X-Officer" in headers:
                named.append(operation["operationId"])
            elif method == "post" and path.startswith("/v1/checks"):
                raise AssertionError(f"{operation['operationId']} does not declare X-Officer")
    assert {"raise_check", "accept_check", "reply_check", "urge_check", "revoke_proof"} <= set(named)
    assert "verify_proof" not in named and "create_department" not in named
