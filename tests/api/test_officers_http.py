"""Officers over HTTP (API.md §12) on both stores: the admin adds, lists and removes them, the code shown
once and kept only as a hash outside the events, ``X-Officer`` on department commands, and ``officer`` in
every history event."""

from __future__ import annotations

import base64

import pytest

from api.workbench.credentials import enrolment_code_hash
from api.workbench.sessions import Officer, Sessions
from tests.api.conftest import Province


def _add(province: Province, department: str, login: str, name: str = "王力", expect: int = 201) -> dict:
    return province.admin.post(f"/v1/departments/{department}/officers", json={"login": login, "name": name}, expect=expect).json()


def test_the_admin_adds_an_officer_whose_enrolment_code_is_shown_once(province: Province) -> None:
    response = province.admin.post(
        f"/v1/departments/{province.gulou.id}/officers", json={"login": "wang.li", "name": "王力"}, expect=201
    )
    body = response.json()
    code = body.pop("enrolment_code")
    assert body == {"login": "wang.li", "name": "王力", "department": province.gulou.id, "status": "active"}
    assert int(response.headers["X-Event-Position"]) == province.position()
    listed = province.admin.get(f"/v1/departments/{province.gulou.id}/officers", expect=200).json()
    assert listed == {"items": [body], "next_cursor": None}
    assert province.as_("gulou").get(f"/v1/departments/{province.gulou.id}/officers", expect=200).json() == listed
    # Stored as a hash in the accounts, never in an event (auditors export those).
    with province.services.database.transaction() as cursor:
        rows = cursor.execute("SELECT enrolment_hash, enrolment_expires_at FROM ui_accounts").fetchall()
    assert [row[0] for row in rows] == [enrolment_code_hash(code)] and rows[0][1] is not None
    events = province.as_("auditor").get(
        "/v1/audit/events", params={"limit": 1000, "min_position": province.position()}, expect=200
    ).json()["items"]
    states = b"".join(base64.b64decode(item["state_b64"]) for item in events)
    assert code.encode() not in states and enrolment_code_hash(code).encode() not in states
    assert any(item["type"] == "nocert:department:OfficerAdded" for item in events)


def test_officer_rules_answer_the_contracts_errors(province: Province) -> None:
    gulou = province.gulou.id
    _add(province, gulou, "wang.li")
    assert _add(province, gulou, "wang.li", expect=409)["code"] == "conflict"
    _add(province, province.city.id, "wang.li")  # another department: another officer
    for login in ("ab", "Wang", "王力", "x" * 65, "a b"):
        assert _add(province, gulou, login, expect=422)["code"] == "validation_error"
    assert _add(province, "no-such-department", "li.na", expect=404)["code"] == "not_found"
    province.as_("gulou").post(f"/v1/departments/{gulou}/officers", json={"login": "li.na", "name": "李娜"}, expect=403)
    province.as_("city").get(f"/v1/departments/{gulou}/officers", expect=403)
    province.as_("gulou").delete(f"/v1/departments/{gulou}/officers/wang.li", expect=403)
    province.admin.delete(f"/v1/departments/{gulou}/officers/nobody", expect=404)
    province.admin.get("/v1/departments/no-such-department/officers", expect=404)


def test_deleting_an_officer_ends_its_sessions_and_keeps_its_login_taken(province: Province) -> None:
    gulou = province.gulou.id
    _add(province, gulou, "wang.li")
    sessions: Sessions = province.app.state.workbench.sessions
    first, second = sessions.start(Officer(gulou, "wang.li")), sessions.start(Officer(gulou, "wang.li"))
    other = sessions.start(Officer(gulou, "li.na"))
    response = province.admin.delete(f"/v1/departments/{gulou}/officers/wang.li", expect=204)
    assert int(response.headers["X-Event-Position"]) == province.position()
    assert sessions.resume(first.id) is None and sessions.resume(second.id) is None
    assert sessions.resume(other.id) is not None
    with province.services.database.transaction() as cursor:
        assert cursor.execute("SELECT count(*) FROM ui_accounts WHERE login = 'wang.li'").fetchone()[0] == 0
    listed = province.admin.get(f"/v1/departments/{gulou}/officers", expect=200).json()["items"]
    assert [(o["login"], o["status"]) for o in listed] == [("wang.li", "removed")]
    assert _add(province, gulou, "wang.li", expect=409)["code"] == "conflict"
    province.admin.delete(f"/v1/departments/{gulou}/officers/wang.li", expect=404)


def test_x_officer_names_the_officer_in_history_and_must_be_an_active_officer_of_the_caller(province: Province) -> None:
    _add(province, province.gulou.id, "wang.li")
    _add(province, province.approver.id, "chen.min")
    _add(province, province.gulou.id, "gone")
    province.admin.delete(f"/v1/departments/{province.gulou.id}/officers/gone", expect=204)
    clerk = {"X-Officer": "chen.min"}
    check = province.as_("approver").post("/v1/checks", json=province.check_body(), headers=clerk, expect=201).json()
    gulou = province.as_("gulou")
    before = province.position()
    for bad in ("nobody", "chen.min", "gone", ""):
        refused = gulou.post(f"/v1/checks/{check['id']}/accept", json={}, headers={"X-Officer": bad}, expect=422).json()
        assert refused["code"] == "invalid_officer"
    assert province.position() == before
    gulou.post(f"/v1/checks/{check['id']}/accept", json={}, headers={"X-Officer": "wang.li"}, expect=200)
    gulou.post(f"/v1/checks/{check['id']}/reply", json={"conclusion": "confirmed"}, expect=200)  # names no officer
    reply = gulou.get(f"/v1/checks/{check['id']}", expect=200).json()
    gulou.post(f"/v1/proofs/{reply['proof']['id']}/revoke", json={"reason": "误出具"}, headers={"X-Officer": "wang.li"}, expect=200)
    # The visibility rule before the officer rule: a stranger gets 404, not 422.
    province.as_("stranger").post(f"/v1/checks/{check['id']}/close", json={"outcome": "applicant_submitted"}, headers={"X-Officer": "x"}, expect=404)
    for reader in ("approver", "gulou", "auditor"):
        history = province.as_(reader).get(f"/v1/checks/{check['id']}/history", expect=200).json()
        assert [(e["type"], e["officer"]) for e in history["events"]] == [
            ("Raised", "chen.min"),
            ("Accepted", "wang.li"),
            ("Replied", None),
            ("ProofRevoked", "wang.li"),
        ]
        assert all("officer" not in e["data"] for e in history["events"])


@pytest.mark.parametrize("path", ["/v1/departments/{d}/officers"])
def test_the_officer_list_pages(province: Province, path: str) -> None:
    gulou = province.gulou.id
    for login in ("c.officer", "a.officer", "b.officer"):
        _add(province, gulou, login)
    first = province.admin.get(path.format(d=gulou), params={"limit": 2}, expect=200).json()
    assert [o["login"] for o in first["items"]] == ["a.officer", "b.officer"]
    rest = province.admin.get(path.format(d=gulou), params={"limit": 2, "cursor": first["next_cursor"]}, expect=200).json()
    assert [o["login"] for o in rest["items"]] == ["c.officer"] and rest["next_cursor"] is None
    assert all("enrolment_code" not in o for o in first["items"] + rest["items"])
