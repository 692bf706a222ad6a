"""API.md §1 idempotency: replays, mismatches, scopes, errors kept, key syntax, restarts, concurrency."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import Province, build_services, live_server, new_uscc


def checks_of(p: Province, **params: Any) -> list[dict[str, Any]]:
    """Every check, as the auditor lists them once the views reflect every event so far."""
    position = p.position()
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 500, "min_position": position, **params} | ({"cursor": cursor} if cursor else {})
        page = p.as_("auditor").get("/v1/checks", params=query, expect=200).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def key() -> str:
    return f"idem-{uuid.uuid4()}"


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


def test_a_replay_returns_the_first_answer_and_changes_nothing(p: Province) -> None:
    headers = {"Idempotency-Key": key()}
    first = p.as_("approver").post("/v1/checks", json=p.check_body(), headers=headers, expect=201)
    count = len(checks_of(p))
    position = p.position()
    for body in (p.check_body(), dict(reversed(list(p.check_body().items())))):  # JSON-equal, other order
        again = p.as_("approver").post("/v1/checks", json=body, headers=headers)
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["X-Event-Position"] == first.headers["X-Event-Position"]
        assert again.headers["content-type"] == first.headers["content-type"]
    spaced = p.as_("approver").request(
        "POST", "/v1/checks", content=b"  " + first.request.content + b"\n", headers={**headers, "Content-Type": "application/json"}
    )
    assert spaced.status_code == 201 and spaced.content == first.content
    assert p.position() == position
    assert len(checks_of(p)) == count


def test_a_replayed_command_records_one_event(p: Province) -> None:
    check = p.raise_check()
    headers = {"Idempotency-Key": key()}
    first = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers, expect=200)
    again = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["X-Event-Position"] == first.headers["X-Event-Position"]
    history = p.as_("approver").get(f"/v1/checks/{check['id']}/history").json()["events"]
    assert [e["type"] for e in history] == ["Raised", "Accepted"]
    # Without the key the same command is a second attempt, refused by the status machine.
    assert p.act(check["id"], "accept", "gulou", expect=409)["code"] == "invalid_transition"


def test_admin_commands_are_idempotent_too(p: Province) -> None:
    headers = {"Idempotency-Key": key()}
    body = {
        "id": f"idem-{uuid.uuid4().hex[:8]}",
        "name": "测试部门",
        "uscc": new_uscc(),
        "roles": ["approver"],
        "kind": "test",
        "region": "350111",
    }
    first = p.admin.post("/v1/departments", json=body, headers=headers, expect=201)
    again = p.admin.post("/v1/departments", json=body, headers=headers, expect=201)
    # The same answer, but the API key is shown once only: a replay withholds it and says so (#11.3).
    assert first.json()["api_key"]
    replayed = again.json()
    assert replayed["api_key"] is None and replayed["withheld"] == ["api_key"]
    assert {k: v for k, v in replayed.items() if k not in ("api_key", "withheld")} == {
        k: v for k, v in first.json().items() if k != "api_key"
    }
    listed = p.admin.get("/v1/departments", params={"limit": 500}).json()["items"]
    assert [item["id"] for item in listed].count(body["id"]) == 1


def test_the_same_key_with_another_body_is_422_idempotency_mismatch(p: Province) -> None:
    headers = {"Idempotency-Key": key()}
    p.as_("approver").post("/v1/checks", json=p.check_body(), headers=headers, expect=201)
    count = len(checks_of(p))
    other = p.check_body(purpose="另一个用途")
    problem = p.as_("approver").post("/v1/checks", json=other, headers=headers, expect=422)
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["code"] == "idempotency_mismatch"
    assert len(checks_of(p)) == count


def test_keys_are_scoped_to_the_principal_and_the_path(p: Province) -> None:
    shared = {"Idempotency-Key": key()}
    mine = p.as_("approver").post("/v1/checks", json=p.check_body(), headers=shared, expect=201).json()
    theirs = p.as_("stranger").post("/v1/checks", json=p.check_body(), headers=shared, expect=201).json()
    assert mine["id"] != theirs["id"]
    assert mine["approver"] == "fz-estate" and theirs["approver"] == "xm-estate"
    ids = {item["id"] for item in checks_of(p)}
    assert {mine["id"], theirs["id"]} <= ids
    # One principal, one key, two paths: two commands.
    first, second = p.raise_check(), p.raise_check()
    accepted = [
        p.as_("gulou").post(f"/v1/checks/{c['id']}/accept", json={}, headers=shared, expect=200).json()
        for c in (first, second)
    ]
    assert [a["id"] for a in accepted] == [first["id"], second["id"]]
    assert all(a["status"] == "accepted" for a in accepted)


def test_an_error_answer_is_replayed_too(p: Province) -> None:
    headers = {"Idempotency-Key": key()}
    code = f"later-{uuid.uuid4().hex[:6]}"
    body = p.check_body(category=code)
    first = p.as_("approver").post("/v1/checks", json=body, headers=headers, expect=422)
    assert first.json()["code"] == "unknown_category"
    p.category(code)  # the reason of the refusal is gone; the key still answers as the first time
    again = p.as_("approver").post("/v1/checks", json=body, headers=headers, expect=422)
    assert again.content == first.content
    assert again.headers["content-type"].startswith("application/problem+json")
    assert not [c for c in checks_of(p, category=code)]
    # A 409 is kept as well.
    check = p.raise_check()
    p.act(check["id"], "withdraw", "approver")
    accept_key = {"Idempotency-Key": key()}
    refused = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=accept_key, expect=409)
    assert p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=accept_key, expect=409).content == refused.content


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"k" * 256,
        "中文".encode(),
        "caf\u00e9".encode("latin-1"),
        b"tab\there",
        b"del\x7f",
        b"nul\x00",
    ],
    ids=["empty", "256-chars", "utf8", "latin1", "tab", "del", "nul"],
)
def test_invalid_keys_are_422(p: Province, value: bytes) -> None:
    count = len(checks_of(p))
    try:
        response = p.as_("approver").request("POST", "/v1/checks", json=p.check_body(), headers={"Idempotency-Key": value})  # type: ignore[dict-item]
    except (httpx.LocalProtocolError, ValueError):
        pytest.skip("the HTTP client refuses to send this header value")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert len(checks_of(p)) == count


@pytest.mark.parametrize("value", ["k" * 255, "a", "with space", "~!@#$%^&*()_+{}|:<>?`-=[];',./\""])
def test_valid_keys_are_accepted(p: Province, value: str) -> None:
    first = p.as_("approver").post("/v1/checks", json=p.check_body(), headers={"Idempotency-Key": value}, expect=201)
    again = p.as_("approver").post("/v1/checks", json=p.check_body(), headers={"Idempotency-Key": value}, expect=201)
    assert again.content == first.content


def test_an_invalid_key_does_not_overrule_the_role_or_the_body(p: Province) -> None:
    bad = {"Idempotency-Key": "k" * 256}
    assert p.as_("auditor").post("/v1/checks", json=p.check_body(), headers=bad, expect=403).json()["code"] == "forbidden"
    check = p.raise_check()
    assert p.as_("city").post(f"/v1/checks/{check['id']}/accept", json={}, headers=bad, expect=404).json()["code"] == "not_found"
    malformed = p.as_("approver").request("POST", "/v1/checks", content=b"{", headers={**bad, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"


def test_replays_survive_a_restart(province: Province, durable_database_url: str) -> None:
    headers = {"Idempotency-Key": key()}
    first = province.as_("approver").post("/v1/checks", json=province.check_body(), headers=headers, expect=201)
    refused = province.as_("approver").post(
        "/v1/checks", json=province.check_body(category="nope"), headers={"Idempotency-Key": "refused"}, expect=422
    )
    count = len(checks_of(province))
    # A second process on the same store (another worker, or the service after a restart).
    services = build_services(durable_database_url, Path(province.services.settings.key_dir))
    try:
        with TestClient(create_app(services)) as client:
            auth = {"Authorization": f"Bearer {province.approver.key}"}
            again = client.post("/v1/checks", json=province.check_body(), headers={**auth, **headers})
            assert again.status_code == 201 and again.content == first.content
            assert again.headers["X-Event-Position"] == first.headers["X-Event-Position"]
            assert client.post("/v1/checks", json=province.check_body(category="nope"), headers={**auth, "Idempotency-Key": "refused"}).content == refused.content
            mismatch = client.post("/v1/checks", json=province.check_body(purpose="x"), headers={**auth, **headers})
            assert mismatch.status_code == 422 and mismatch.json()["code"] == "idempotency_mismatch"
    finally:
        services.close()
    assert len(checks_of(province)) == count


def test_concurrent_identical_requests_create_one_check(p: Province) -> None:
    code = f"burst-{uuid.uuid4().hex[:6]}"
    p.category(code)
    body = p.check_body(category=code)
    headers = {"Authorization": f"Bearer {p.approver.key}", "Idempotency-Key": key()}
    barrier = threading.Barrier(16)
    answers: list[httpx.Response] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    with live_server(p.app) as url:

        def send() -> None:
            try:
                with httpx.Client(base_url=url, timeout=60) as client:
                    barrier.wait()
                    response = client.post("/v1/checks", json=body, headers=headers)
                with lock:
                    answers.append(response)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=send) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    assert len(answers) == 16
    created = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code == 409]
    assert len(created) + len(busy) == 16, [(a.status_code, a.text[:200]) for a in answers]
    assert created, "at least the first request answers 201"
    assert len({a.content for a in created}) == 1
    assert len({a.headers["X-Event-Position"] for a in created}) == 1
    assert all(a.json()["code"] == "idempotency_in_progress" for a in busy)
    listed = checks_of(p, category=code)
    assert [c["id"] for c in listed] == [created[0].json()["id"]]
    # Afterwards the key replays.
    again = p.client.post("/v1/checks", json=body, headers=headers)
    assert again.status_code == 201 and again.content == created[0].content


def test_a_department_named_admin_does_not_share_the_operators_keys(p: Province) -> None:
    """Department ids and the operator's principal live in one namespace of names ("admin" is a valid
    department id): their idempotency keys must still never meet."""
    named_admin = p.department("named-admin", id="admin", roles=["approver"], kind="real-estate", region="350111")
    headers = {"Idempotency-Key": key()}
    body = {
        "id": f"idem-{uuid.uuid4().hex[:8]}",
        "name": "测试部门",
        "uscc": new_uscc(),
        "roles": ["approver"],
        "kind": "test",
        "region": "350111",
    }
    created = p.admin.post("/v1/departments", json=body, headers=headers, expect=201).json()
    impostor = p.as_(named_admin).post("/v1/departments", json=body, headers=headers)
    assert impostor.status_code == 403 and created["api_key"] not in impostor.text
