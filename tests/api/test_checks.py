"""API.md §4 through HTTP: raising and routing checks, every command, every read, masking and lists."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta, timezone
from typing import Any

import pytest

from domain.identifiers import make_id_number
from domain.timefmt import format_time, parse_time
from tests.api.conftest import APPLICANT_CITY, APPLICANT_XIAMEN, Province, masked
from tests.bodies import APPLICANT, CATEGORY, OTHER_NUMBER

CHECK_FIELDS = {
    "id", "status", "category", "matter", "approver", "issuer", "applicant", "claims", "purpose", "consent",
    "raised_at", "due_at", "overdue", "replied_at", "closed_at", "outcome", "proof", "decline", "info_requests",
    "forwarded_from", "version", "overdue_since", "urged",
}
EVENT_TYPES = {
    "Raised", "Accepted", "InfoRequested", "InfoSupplied", "Forwarded", "Replied", "Declined", "Withdrawn",
    "Closed", "ProofRevoked",
}


def jws_payload(jws: str) -> dict[str, Any]:
    part = jws.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def command(p: Province, check_id: str, action: str, by: str, body: dict | None = None, expect: int = 200):
    """A command's raw response (for its headers)."""
    defaults = {
        "accept": {},
        "request-info": {"question": "请补充户籍地址"},
        "supply-info": {"answer": "福州市鼓楼区某路1号"},
        "reply": {"conclusion": "confirmed", "statements": {"same_person": True}},
        "close": {"outcome": "exempted"},
    }
    return p.as_(by).post(f"/v1/checks/{check_id}/{action}", json=defaults.get(action, {}) if body is None else body, expect=expect)


def listed_ids(p: Province, who: Any, path: str = "/v1/checks", **params: Any) -> list[str]:
    position = p.position()
    ids: list[str] = []
    cursor = None
    while True:
        query = {"limit": 500, "min_position": position, **params} | ({"cursor": cursor} if cursor else {})
        page = p.as_(who).get(path, params=query, expect=200).json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def listed(p: Province, who: str, check_id: str, path: str = "/v1/checks") -> dict[str, Any]:
    position = p.position()
    items = p.as_(who).get(path, params={"limit": 500, "min_position": position}, expect=200).json()["items"]
    return next(item for item in items if item["id"] == check_id)


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


# -- raising and routing -------------------------------------------------------------------------


def test_raise_answers_201_with_the_check(p: Province) -> None:
    body = p.check_body()
    response = p.as_("approver").post("/v1/checks", json=body, expect=201)
    check = response.json()
    assert int(response.headers["X-Event-Position"]) >= 1
    assert set(check) == CHECK_FIELDS
    uuid.UUID(check["id"])
    assert check["status"] == "raised" and check["version"] == 1
    assert check["approver"] == "fz-estate" and check["issuer"] == "fz-gulou-police"
    assert check["category"] == CATEGORY and check["matter"] == body["matter"]
    assert check["applicant"] == {"name": "林某某", "id_number": APPLICANT}  # the approver sees it in full
    assert check["claims"] == body["claims"] and check["purpose"] == body["purpose"]
    assert check["consent"] == body["consent"]
    assert check["overdue"] is False
    assert check["replied_at"] is None and check["closed_at"] is None and check["outcome"] is None
    assert check["proof"] is None and check["decline"] is None
    assert check["info_requests"] == [] and check["forwarded_from"] == []
    for field in ("raised_at", "due_at"):
        assert check[field].endswith("Z")
    assert parse_time(check["due_at"]) - parse_time(check["raised_at"]) == timedelta(hours=24)


def test_due_at_follows_the_category_sla(p: Province) -> None:
    code = f"sla-{uuid.uuid4().hex[:6]}"
    p.category(code, sla_hours=1.5)
    check = p.raise_check(category=code)
    assert parse_time(check["due_at"]) - parse_time(check["raised_at"]) == timedelta(hours=1.5)


def test_routing_by_the_longest_region_prefix(p: Province) -> None:
    assert p.raise_check()["issuer"] == "fz-gulou-police"  # 350102 covers 350102 exactly
    city = p.raise_check(applicant={"name": "陈某", "id_number": APPLICANT_CITY})
    assert city["issuer"] == "fz-police"  # only 3501 covers 350104
    assert p.raise_check(issuer="fz-police")["issuer"] == "fz-police"  # a named issuer is not routed


def test_no_route_and_ambiguous_route(p: Province) -> None:
    problem = p.as_("approver").post(
        "/v1/checks", json=p.check_body(applicant={"name": "王某", "id_number": APPLICANT_XIAMEN}), expect=422
    ).json()
    assert problem["code"] == "no_route"

    kind = f"tax-{uuid.uuid4().hex[:4]}"
    code = f"tax-cert-{uuid.uuid4().hex[:4]}"
    p.category(code, issuer_kind=kind)
    assert p.as_("approver").post("/v1/checks", json=p.check_body(category=code), expect=422).json()["code"] == "no_route"
    p.department(f"{kind}-a", roles=["issuer"], kind=kind, region="350100")
    p.department(f"{kind}-b", roles=["issuer"], kind=kind, region="350100")
    problem = p.as_("approver").post("/v1/checks", json=p.check_body(category=code), expect=422).json()
    assert problem["code"] == "ambiguous_route"
    # A longer prefix decides again.
    district = p.department(f"{kind}-c", roles=["issuer"], kind=kind, region="350102")
    assert p.raise_check(category=code)["issuer"] == district.id


@pytest.mark.parametrize("issuer", ["no-such-dept", "fz-civil-affairs", "fz-estate", "fj-audit", "Bad Id!"])
def test_a_named_issuer_that_is_no_issuer_of_the_kind_is_invalid_issuer(p: Province, issuer: str) -> None:
    problem = p.as_("approver").post("/v1/checks", json=p.check_body(issuer=issuer), expect=422).json()
    assert problem["code"] == "invalid_issuer"


def _with_check_char(first16: str, wanted: str) -> str:
    for digit in "0123456789":
        number = make_id_number(first16 + digit)
        if number.endswith(wanted):
            return number
    raise AssertionError("no such number")


def test_identity_numbers_are_validated(p: Province) -> None:
    wrong = APPLICANT[:-1] + ("0" if APPLICANT[-1] != "0" else "1")
    future = make_id_number("35010220990101123")
    for bad in (wrong, future, APPLICANT[:17], APPLICANT + "1", make_id_number("35010219900230123"), "３５０１０２１９９００１０１１２３８", 350102199001011238):
        problem = p.as_("approver").post(
            "/v1/checks", json=p.check_body(applicant={"name": "林某某", "id_number": bad}), expect=422
        ).json()
        assert problem["code"] in ("invalid_id_number", "validation_error"), bad
        if isinstance(bad, str):
            assert problem["code"] == "invalid_id_number", bad
    with_x = _with_check_char("3501021990010112", "X")
    check = p.raise_check(applicant={"name": "林某某", "id_number": with_x.lower()})
    assert check["applicant"]["id_number"] == with_x  # upper-cased on input


def test_unknown_category_and_invalid_bodies(p: Province) -> None:
    caller = p.as_("approver")
    assert caller.post("/v1/checks", json=p.check_body(category="no-such-category"), expect=422).json()["code"] == "unknown_category"
    for overrides in (
        {"consent": {"method": "telepathy", "reference": "x"}},
        {"purpose": ""},
        {"matter": {"code": "x"}},
        {"claims": []},
        {"unexpected": True},
    ):
        assert caller.post("/v1/checks", json=p.check_body(**overrides), expect=422).json()["code"] == "validation_error"
    incomplete = p.check_body()
    del incomplete["consent"]
    assert caller.post("/v1/checks", json=incomplete, expect=422).json()["code"] == "validation_error"


# -- the lifecycle -------------------------------------------------------------------------------


def test_full_lifecycle_with_event_positions(p: Province) -> None:
    raised = p.as_("approver").post("/v1/checks", json=p.check_body(), expect=201)
    check_id = raised.json()["id"]
    positions = [int(raised.headers["X-Event-Position"])]
    assert positions[0] == p.position()  # the last event it recorded
    steps = [
        ("accept", "gulou", None, "accepted"),
        ("request-info", "gulou", {"question": "请提供曾用名"}, "info_requested"),
        ("supply-info", "approver", {"answer": "林某"}, "accepted"),
        ("reply", "gulou", {"conclusion": "confirmed", "statements": {"same_person": True}, "valid_days": 30}, "replied"),
        ("close", "approver", {"outcome": "exempted"}, "closed"),
    ]
    documents = []
    for version, (action, by, body, status) in enumerate(steps, start=2):
        response = command(p, check_id, action, by, body)
        position = response.headers["X-Event-Position"]
        assert position.isdigit()
        assert int(position) == p.position()
        positions.append(int(position))
        document = response.json()
        assert document["status"] == status and document["version"] == version
        documents.append(document)
    assert positions == sorted(positions) and len(set(positions)) == len(positions)

    info = documents[2]["info_requests"]
    assert len(info) == 1 and info[0]["question"] == "请提供曾用名" and info[0]["answer"] == "林某"
    assert info[0]["asked_at"] <= info[0]["answered_at"]
    assert documents[1]["info_requests"][0]["answer"] is None and documents[1]["info_requests"][0]["answered_at"] is None

    replied = documents[3]
    proof = replied["proof"]
    assert set(proof) == {"id", "jws", "kid", "conclusion", "status"}
    assert proof["kid"] == p.gulou.kid and proof["conclusion"] == "confirmed" and proof["status"] == "valid"
    assert replied["replied_at"] is not None and replied["closed_at"] is None
    payload = jws_payload(proof["jws"])
    assert payload["id"] == proof["id"] and payload["check_id"] == check_id
    assert payload["subject"] == {"name": "林某某", "id_number": APPLICANT}
    assert payload["issuer"]["id"] == "fz-gulou-police" and payload["requester"]["id"] == "fz-estate"
    assert parse_time(payload["valid_until"]) - parse_time(payload["issued_at"]) == timedelta(days=30)

    closed = documents[4]
    assert closed["outcome"] == "exempted" and closed["closed_at"] is not None
    assert closed["overdue"] is False

    history = p.as_("approver").get(f"/v1/checks/{check_id}/history", expect=200).json()
    assert history["check_id"] == check_id
    events = history["events"]
    assert [e["type"] for e in events] == ["Raised", "Accepted", "InfoRequested", "InfoSupplied", "Replied", "Closed"]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["position"] for e in events] == positions
    assert [e["actor"] for e in events] == [
        "fz-estate", "fz-gulou-police", "fz-gulou-police", "fz-estate", "fz-gulou-police", "fz-estate"
    ]
    assert all(e["at"].endswith("Z") for e in events)
    assert events[0]["data"]["applicant"]["id_number"] == APPLICANT
    assert events[2]["data"]["question"] == "请提供曾用名"
    assert events[5]["data"]["outcome"] == "exempted"


def test_further_commands_after_a_terminal_state_are_invalid_transition(p: Province) -> None:
    check = p.raise_check()
    p.act(check["id"], "withdraw", "approver")
    for action, by in (("accept", "gulou"), ("reply", "gulou"), ("decline", "gulou"), ("withdraw", "approver"), ("close", "approver")):
        assert p.act(check["id"], action, by, expect=409)["code"] == "invalid_transition"


def test_status_machine_refusals(p: Province) -> None:
    check = p.raise_check()
    assert p.act(check["id"], "request-info", "gulou", expect=409)["code"] == "invalid_transition"  # not accepted
    assert p.act(check["id"], "supply-info", "approver", expect=409)["code"] == "invalid_transition"  # nothing asked
    p.act(check["id"], "accept", "gulou")
    assert p.act(check["id"], "accept", "gulou", expect=409)["code"] == "invalid_transition"
    p.act(check["id"], "request-info", "gulou")
    assert p.act(check["id"], "reply", "gulou", expect=409)["code"] == "invalid_transition"  # waits for the answer
    assert p.act(check["id"], "forward", "gulou", expect=409)["code"] == "invalid_transition"
    p.act(check["id"], "supply-info", "approver")
    p.act(check["id"], "reply", "gulou")
    for action, by in (("accept", "gulou"), ("forward", "gulou"), ("decline", "gulou"), ("withdraw", "approver"), ("reply", "gulou")):
        assert p.act(check["id"], action, by, expect=409)["code"] == "invalid_transition", action


def test_the_wrong_party_of_a_visible_check_is_forbidden(p: Province) -> None:
    check = p.raise_check()
    # The approver cannot act as the issuer (role), an unrelated issuer cannot see it (404).
    assert p.act(check["id"], "accept", "approver", expect=403)["code"] == "forbidden"
    assert p.act(check["id"], "accept", "city", expect=404)["code"] == "not_found"
    assert p.act(check["id"], "withdraw", "stranger", expect=404)["code"] == "not_found"
    assert p.act(check["id"], "withdraw", "gulou", expect=403)["code"] == "forbidden"


def test_forward(p: Province) -> None:
    check = p.raise_check()
    p.act(check["id"], "accept", "gulou")
    response = command(p, check["id"], "forward", "gulou", {"to": "fz-police", "reason": "户籍已迁出"})
    assert response.headers["X-Event-Position"].isdigit()
    forwarded = response.json()
    assert forwarded["status"] == "raised" and forwarded["issuer"] == "fz-police"
    assert forwarded["forwarded_from"] == ["fz-gulou-police"]
    history = p.as_("approver").get(f"/v1/checks/{check['id']}/history", expect=200).json()["events"]
    forwarded_at = parse_time(history[-1]["at"])
    assert history[-1]["type"] == "Forwarded" and history[-1]["data"]["to"] == "fz-police"
    assert parse_time(forwarded["due_at"]) == forwarded_at + timedelta(hours=24)
    assert parse_time(forwarded["due_at"]) > parse_time(check["due_at"])
    # The response to the former issuer is already masked: it is a former issuer now.
    assert forwarded["applicant"]["id_number"] == masked(APPLICANT)

    # The new issuer sees everything; the former one still reads the check, masked and without the JWS.
    replied = p.act(check["id"], "reply", "city")
    assert replied["proof"]["jws"] and replied["applicant"]["id_number"] == APPLICANT
    full = p.as_("city").get(f"/v1/checks/{check['id']}", expect=200).json()
    assert full["applicant"]["id_number"] == APPLICANT and full["claims"]["other_id_number"] == OTHER_NUMBER
    assert full["proof"]["jws"] == replied["proof"]["jws"]
    former = p.as_("gulou").get(f"/v1/checks/{check['id']}", expect=200).json()
    assert former["applicant"]["id_number"] == masked(APPLICANT)
    assert former["claims"]["other_id_number"] == masked(OTHER_NUMBER)
    assert former["proof"]["jws"] is None and former["proof"]["id"] == replied["proof"]["id"]
    assert {k: v for k, v in former.items() if k not in ("applicant", "claims", "proof", "overdue")} == {
        k: v for k, v in full.items() if k not in ("applicant", "claims", "proof", "overdue")
    }
    # The former issuer may no longer act on it.
    assert p.act(check["id"], "decline", "gulou", expect=403)["code"] == "forbidden"


def test_forward_refusals(p: Province) -> None:
    check = p.raise_check()
    for to in ("fz-gulou-police", "fz-civil-affairs", "no-such-dept", "fz-estate"):
        problem = p.act(check["id"], "forward", "gulou", {"to": to, "reason": "x"}, expect=422)
        assert problem["code"] == "invalid_issuer", to
    assert p.act(check["id"], "forward", "gulou", {"to": "fz-police"}, expect=422)["code"] == "validation_error"
    assert p.act(check["id"], "forward", "city", expect=404)["code"] == "not_found"
    p.act(check["id"], "forward", "gulou")
    # Forwarded back to its first issuer is allowed: it only has to differ from the current one.
    back = p.act(check["id"], "forward", "city", {"to": "fz-gulou-police", "reason": "退回"})
    assert back["issuer"] == "fz-gulou-police" and back["forwarded_from"] == ["fz-gulou-police", "fz-police"]


def test_decline(p: Province) -> None:
    for prepare in ([], ["accept"], ["accept", "request-info"]):
        check = p.raise_check()
        for action in prepare:
            p.act(check["id"], action, "gulou")
        response = command(p, check["id"], "decline", "gulou", {"reason_code": "insufficient_information", "note": "信息不足"})
        assert response.headers["X-Event-Position"].isdigit()
        declined = response.json()
        assert declined["status"] == "declined"
        assert declined["decline"] == {"reason_code": "insufficient_information", "note": "信息不足"}
        assert declined["replied_at"] is not None and declined["proof"] is None
    check = p.raise_check()
    for body in ({"reason_code": "bored"}, {"note": "x"}, {"reason_code": "other", "note": 5}):
        assert p.act(check["id"], "decline", "gulou", body, expect=422)["code"] == "validation_error"
    for code in ("no_record", "out_of_jurisdiction", "other"):
        assert p.act(p.raise_check()["id"], "decline", "gulou", {"reason_code": code})["decline"]["reason_code"] == code
    closed = p.act(p.act(check["id"], "decline", "gulou")["id"], "close", "approver", {"outcome": "applicant_submitted"})
    assert closed["status"] == "closed" and closed["outcome"] == "applicant_submitted"


def test_withdraw(p: Province) -> None:
    for prepare in ([], ["accept"], ["accept", "request-info"]):
        check = p.raise_check()
        for action in prepare:
            p.act(check["id"], action, "gulou")
        response = command(p, check["id"], "withdraw", "approver", {"reason": "申请人放弃办理"})
        withdrawn = response.json()
        assert response.headers["X-Event-Position"].isdigit()
        assert withdrawn["status"] == "withdrawn" and withdrawn["closed_at"] is not None
        assert withdrawn["outcome"] is None
    replied = p.replied_check()
    assert p.act(replied["id"], "withdraw", "approver", expect=409)["code"] == "invalid_transition"
    # The reason may be left out.
    assert p.act(p.raise_check()["id"], "withdraw", "approver", {})["status"] == "withdrawn"


def test_close_outcomes(p: Province) -> None:
    # commitment: allowed by the category, from any open or answered status.
    for prepare in ([], ["accept"]):
        check = p.raise_check()
        for action in prepare:
            p.act(check["id"], action, "gulou")
        assert p.act(check["id"], "close", "approver", {"outcome": "commitment"})["outcome"] == "commitment"
    code = f"no-commit-{uuid.uuid4().hex[:4]}"
    p.category(code, modes=["collaboration"])
    refused = p.raise_check(category=code)
    assert p.act(refused["id"], "close", "approver", {"outcome": "commitment"}, expect=409)["code"] == "invalid_transition"
    # exempted: only a confirmed reply with a valid proof.
    raised = p.raise_check()
    assert p.act(raised["id"], "close", "approver", {"outcome": "exempted"}, expect=409)["code"] == "invalid_transition"
    not_confirmed = p.act(p.raise_check()["id"], "reply", "gulou", {"conclusion": "not_confirmed"})
    assert p.act(not_confirmed["id"], "close", "approver", {"outcome": "exempted"}, expect=409)["code"] == "invalid_transition"
    assert p.act(not_confirmed["id"], "close", "approver", {"outcome": "applicant_submitted"})["status"] == "closed"
    confirmed = p.replied_check()
    closed = p.act(confirmed["id"], "close", "approver", {"outcome": "exempted"})
    assert closed["status"] == "closed" and closed["outcome"] == "exempted"
    assert p.act(confirmed["id"], "close", "approver", {"outcome": "exempted"}, expect=409)["code"] == "invalid_transition"
    for body in ({}, {"outcome": "forgotten"}):
        assert p.act(p.raise_check()["id"], "close", "approver", body, expect=422)["code"] == "validation_error"


@pytest.mark.parametrize("valid_days", [0, 3651, -1, "90", 90.5, True, None, 90.0])
def test_valid_days_must_be_an_integer_from_1_to_3650(p: Province, valid_days: Any) -> None:
    check = p.raise_check()
    problem = p.act(check["id"], "reply", "gulou", {"conclusion": "confirmed", "valid_days": valid_days}, expect=422)
    assert problem["code"] == "validation_error"
    assert p.as_("gulou").get(f"/v1/checks/{check['id']}", expect=200).json()["status"] == "raised"


@pytest.mark.parametrize("valid_days", [1, 3650, None])
def test_valid_days_bounds_and_default(p: Province, valid_days: int | None) -> None:
    body: dict[str, Any] = {"conclusion": "not_confirmed"}
    if valid_days is not None:
        body["valid_days"] = valid_days
    replied = p.act(p.raise_check()["id"], "reply", "gulou", body)
    payload = jws_payload(replied["proof"]["jws"])
    days = valid_days or 90
    assert parse_time(payload["valid_until"]) - parse_time(payload["issued_at"]) == timedelta(days=days)
    assert payload["conclusion"] == "not_confirmed" and payload["statements"] == {}


def test_reply_refusals(p: Province) -> None:
    check = p.raise_check()
    for body in ({}, {"conclusion": "maybe"}, {"conclusion": "confirmed", "statements": []}):
        assert p.act(check["id"], "reply", "gulou", body, expect=422)["code"] == "validation_error"


# -- reads: versions, as_of, history -------------------------------------------------------------


@pytest.fixture
def lived(p: Province) -> dict[str, Any]:
    """A check with six events, and what each version looked like."""
    check = p.raise_check()
    statuses = ["raised"]
    for action, by in (("accept", "gulou"), ("request-info", "gulou"), ("supply-info", "approver"), ("reply", "gulou"), ("close", "approver")):
        statuses.append(p.act(check["id"], action, by)["status"])
    history = p.as_("approver").get(f"/v1/checks/{check['id']}/history", expect=200).json()["events"]
    return {"id": check["id"], "statuses": statuses, "history": history}


def test_every_version_and_beyond(p: Province, lived: dict[str, Any]) -> None:
    path = f"/v1/checks/{lived['id']}"
    for version, status in enumerate(lived["statuses"], start=1):
        document = p.as_("approver").get(path, params={"version": version}, expect=200).json()
        assert document["version"] == version and document["status"] == status
        assert document["applicant"]["id_number"] == APPLICANT
    assert p.as_("approver").get(path, params={"version": 7}, expect=404).json()["code"] == "not_found"
    assert p.as_("approver").get(path, params={"version": 10**12}, expect=404).json()["code"] == "not_found"
    for bad in ("0", "-1", "two", "1.5", ""):
        assert p.as_("approver").get(path, params={"version": bad}, expect=422).json()["code"] == "validation_error"
    # Version 5 is the reply: its proof is there, the close is not.
    fifth = p.as_("approver").get(path, params={"version": 5}).json()
    assert fifth["proof"]["jws"] and fifth["outcome"] is None and fifth["closed_at"] is None


def test_as_of(p: Province, lived: dict[str, Any]) -> None:
    path = f"/v1/checks/{lived['id']}"
    for event in lived["history"]:
        at = parse_time(event["at"])
        document = p.as_("approver").get(path, params={"as_of": format_time(at)}, expect=200).json()
        assert document["version"] == event["version"]
    # Between two events: the earlier one.
    first, second = parse_time(lived["history"][0]["at"]), parse_time(lived["history"][1]["at"])
    if second - first > timedelta(microseconds=1):
        middle = first + (second - first) / 2
        assert p.as_("approver").get(path, params={"as_of": format_time(middle)}).json()["version"] == 1
    # Long after the last: the latest.
    later = p.as_("approver").get(path, params={"as_of": "2999-01-01T00:00:00Z"}, expect=200).json()
    assert later["version"] == 6
    # Other offsets are accepted and mean the same instant.
    offset = parse_time(lived["history"][2]["at"]).astimezone(timezone(timedelta(hours=8)))
    assert p.as_("approver").get(path, params={"as_of": offset.isoformat()}).json()["version"] == 3
    before = format_time(first - timedelta(seconds=1))
    assert p.as_("approver").get(path, params={"as_of": before}, expect=404).json()["code"] == "not_found"
    both = p.as_("approver").get(path, params={"as_of": format_time(first), "version": 1}, expect=422).json()
    assert both["code"] == "validation_error"
    for bad in ("yesterday", "2024-01-01T00:00:00", "2024-13-01T00:00:00Z"):
        assert p.as_("approver").get(path, params={"as_of": bad}, expect=422).json()["code"] == "validation_error"


def test_history_of_every_event_type(p: Province) -> None:
    check = p.raise_check()
    p.act(check["id"], "forward", "gulou")
    p.act(check["id"], "accept", "city")
    p.act(check["id"], "reply", "city")
    proof_id = p.as_("approver").get(f"/v1/checks/{check['id']}").json()["proof"]["id"]
    revoked = p.as_("city").post(f"/v1/proofs/{proof_id}/revoke", json={"reason": "出具错误"}, expect=200)
    history = p.as_("auditor").get(f"/v1/checks/{check['id']}/history", expect=200).json()["events"]
    assert [e["type"] for e in history] == ["Raised", "Forwarded", "Accepted", "Replied", "ProofRevoked"]
    assert [e["actor"] for e in history] == ["fz-estate", "fz-gulou-police", "fz-police", "fz-police", "fz-police"]
    assert history[-1]["position"] == int(revoked.headers["X-Event-Position"])
    assert all(set(e) == {"position", "version", "type", "at", "actor", "data"} for e in history)
    assert {e["type"] for e in history} <= EVENT_TYPES
    declined = p.raise_check()
    p.act(declined["id"], "decline", "gulou")
    withdrawn = p.raise_check()
    p.act(withdrawn["id"], "withdraw", "approver")
    types = [e["type"] for e in p.as_("approver").get(f"/v1/checks/{declined['id']}/history").json()["events"]]
    types += [e["type"] for e in p.as_("approver").get(f"/v1/checks/{withdrawn['id']}/history").json()["events"]]
    assert types == ["Raised", "Declined", "Raised", "Withdrawn"]


def test_unknown_or_malformed_check_ids_are_404(p: Province) -> None:
    for check_id in (str(uuid.uuid4()), "not-a-uuid", "1"):
        for suffix in ("", "/history"):
            assert p.as_("auditor").get(f"/v1/checks/{check_id}{suffix}", expect=404).json()["code"] == "not_found"
        assert p.act(check_id, "accept", "gulou", expect=404)["code"] == "not_found"


# -- masking -------------------------------------------------------------------------------------


def test_masking_for_auditors(p: Province) -> None:
    replied = p.replied_check()
    path = f"/v1/checks/{replied['id']}"
    document = p.as_("auditor").get(path, expect=200).json()
    assert document["applicant"] == {"name": "林某某", "id_number": masked(APPLICANT)}
    assert document["claims"]["other_id_number"] == masked(OTHER_NUMBER)
    assert document["claims"]["question"] == "两个身份证号码是否为同一人"
    assert document["proof"]["jws"] == replied["proof"]["jws"]  # auditors see the JWS
    for version in (1, 2):
        old = p.as_("auditor").get(path, params={"version": version}, expect=200).json()
        assert old["applicant"]["id_number"] == masked(APPLICANT)
        assert old["claims"]["other_id_number"] == masked(OTHER_NUMBER)
    history = p.as_("auditor").get(f"{path}/history", expect=200).json()["events"]
    assert history[0]["data"]["applicant"]["id_number"] == masked(APPLICANT)
    assert history[0]["data"]["claims"]["other_id_number"] == masked(OTHER_NUMBER)
    assert history[1]["data"]["jws"] == replied["proof"]["jws"]
    text = p.as_("auditor").get(f"{path}/history").text + p.as_("auditor").get(path).text
    assert APPLICANT not in text.replace(replied["proof"]["jws"], "") and OTHER_NUMBER not in text


def test_masking_for_former_issuers_everywhere(p: Province) -> None:
    check = p.raise_check()
    p.act(check["id"], "forward", "gulou")
    p.act(check["id"], "reply", "city")
    path = f"/v1/checks/{check['id']}"
    former = p.as_("gulou")
    texts = [former.get(path, expect=200).text, former.get(f"{path}/history", expect=200).text]
    texts += [former.get(path, params={"version": v}, expect=200).text for v in (1, 2, 3)]
    for text in texts:
        assert APPLICANT not in text and OTHER_NUMBER not in text
        assert masked(APPLICANT) in text
    history = former.get(f"{path}/history").json()["events"]
    assert history[2]["type"] == "Replied" and history[2]["data"]["jws"] is None
    # Even version 1, raised when gulou was its issuer, is masked: rights are those of now.
    assert former.get(path, params={"version": 1}).json()["applicant"]["id_number"] == masked(APPLICANT)
    assert former.get(path, params={"version": 3}).json()["proof"]["jws"] is None
    # The parties of now see all of it.
    for who in ("approver", "city"):
        text = p.as_(who).get(f"{path}/history").text
        assert APPLICANT in text and OTHER_NUMBER in text
        assert p.as_(who).get(path, params={"version": 1}).json()["applicant"]["id_number"] == APPLICANT


def test_lists_are_masked_for_everyone_and_never_carry_jws(p: Province) -> None:
    replied = p.replied_check()
    raised = p.raise_check()
    for who, path in (("approver", "/v1/checks"), ("gulou", "/v1/checks"), ("auditor", "/v1/checks"), ("gulou", "/v1/inbox")):
        position = p.position()
        page = p.as_(who).get(path, params={"limit": 500, "min_position": position}, expect=200)
        assert APPLICANT not in page.text and OTHER_NUMBER not in page.text
        assert replied["proof"]["jws"] not in page.text
        for item in page.json()["items"]:
            assert set(item) == CHECK_FIELDS
            assert item["applicant"]["id_number"].count("*") == 8
            assert item["proof"] is None or item["proof"]["jws"] is None
    item = listed(p, "auditor", replied["id"])
    full = p.as_("auditor").get(f"/v1/checks/{replied['id']}").json()
    assert item == {**full, "proof": {**full["proof"], "jws": None}}
    assert raised["id"] in listed_ids(p, "gulou", "/v1/inbox")


# -- lists ---------------------------------------------------------------------------------------


def test_who_sees_what_in_lists(p: Province) -> None:
    mine = p.raise_check()
    theirs = p.raise_check(by="stranger")
    forwarded = p.raise_check()
    p.act(forwarded["id"], "forward", "gulou")
    approver, stranger = listed_ids(p, "approver"), listed_ids(p, "stranger")
    assert mine["id"] in approver and forwarded["id"] in approver and theirs["id"] not in approver
    assert theirs["id"] in stranger and mine["id"] not in stranger
    gulou, city = listed_ids(p, "gulou"), listed_ids(p, "city")
    assert mine["id"] in gulou and theirs["id"] in gulou  # both addressed to gulou now
    assert forwarded["id"] not in gulou and forwarded["id"] in city  # addressed to city now
    assert {mine["id"], theirs["id"], forwarded["id"]} <= set(listed_ids(p, "auditor"))
    assert forwarded["id"] not in listed_ids(p, "civil")


def test_list_filters(p: Province) -> None:
    code = f"filter-{uuid.uuid4().hex[:6]}"
    p.category(code)
    raised = p.raise_check(category=code)
    accepted = p.raise_check(category=code)
    p.act(accepted["id"], "accept", "gulou")
    replied = p.act(p.raise_check(category=code)["id"], "reply", "gulou")
    assert listed_ids(p, "auditor", category=code) == [replied["id"], accepted["id"], raised["id"]]  # newest first
    assert listed_ids(p, "auditor", category=code, status="accepted") == [accepted["id"]]
    assert listed_ids(p, "approver", category=code, status="replied") == [replied["id"]]
    assert listed_ids(p, "auditor", category=code, status="withdrawn") == []
    assert set(listed_ids(p, "auditor", category=code, overdue="false")) == {raised["id"], accepted["id"], replied["id"]}
    assert listed_ids(p, "auditor", category=code, overdue="true") == []
    all_raised = listed_ids(p, "auditor", status="raised")
    assert raised["id"] in all_raised and accepted["id"] not in all_raised


def test_overdue_filter(p: Province) -> None:
    code = f"fast-{uuid.uuid4().hex[:6]}"
    p.category(code, sla_hours=0.0002)  # 0.72 s
    late = p.raise_check(category=code)
    answered = p.act(p.raise_check(category=code)["id"], "reply", "gulou")
    time.sleep(1.0)
    assert p.as_("approver").get(f"/v1/checks/{late['id']}").json()["overdue"] is True
    assert p.as_("approver").get(f"/v1/checks/{answered['id']}").json()["overdue"] is False
    assert listed_ids(p, "auditor", category=code, overdue="true") == [late["id"]]
    assert listed_ids(p, "auditor", category=code, overdue="false") == [answered["id"]]
    assert listed(p, "auditor", late["id"])["overdue"] is True


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"status": "RAISED"},
        {"category": "no-such-category"},
        {"overdue": "maybe"},
        {"cursor": "!!!"},
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "WyJpbmJveCIsIjIwMjQiLCJ4Il0"},  # an inbox cursor
        {"cursor": "WyJkZXBhcnRtZW50cyIsIngiXQ"},  # a departments cursor
        {"min_position": "-1"},
        {"min_position": "soon"},
    ],
)
def test_unknown_filter_values_are_422(p: Province, params: dict) -> None:
    assert p.as_("auditor").get("/v1/checks", params=params, expect=422).json()["code"] == "validation_error"


@pytest.mark.parametrize("cursor", ["!!!", "WyJjaGVja3MiLCIyMDI0IiwieCJd", "e30"])
def test_malformed_inbox_cursor_is_422(p: Province, cursor: str) -> None:
    assert p.as_("gulou").get("/v1/inbox", params={"cursor": cursor}, expect=422).json()["code"] == "validation_error"


def test_check_list_pagination(p: Province) -> None:
    code = f"page-{uuid.uuid4().hex[:6]}"
    p.category(code)
    raised = [p.raise_check(category=code)["id"] for _ in range(4)]
    position = p.position()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, "category": code, "min_position": position} | ({"cursor": cursor} if cursor else {})
        page = p.as_("approver").get("/v1/checks", params=params, expect=200).json()
        assert len(page["items"]) <= 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(raised))


def test_inbox_is_ordered_by_due_at_and_holds_open_checks_only(p: Province) -> None:
    issuer = p.department(f"inbox-{uuid.uuid4().hex[:4]}", roles=["issuer"], kind="police", region="350111")
    ids = {}
    for hours in (48, 1, 12, 6):
        code = f"inbox-{hours}-{uuid.uuid4().hex[:4]}"
        p.category(code, sla_hours=hours)
        ids[hours] = p.raise_check(category=code, issuer=issuer.id)["id"]
    p.act(ids[6], "accept", issuer)
    replied = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", issuer)
    declined = p.act(p.raise_check(issuer=issuer.id)["id"], "decline", issuer)
    p.act(ids[12], "accept", issuer)
    p.act(ids[12], "request-info", issuer)
    inbox = listed_ids(p, issuer, "/v1/inbox")
    assert inbox == [ids[1], ids[6], ids[12], ids[48]]
    assert replied["id"] not in inbox and declined["id"] not in inbox
    # Paged one by one, the same order.
    position = p.position()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, "min_position": position} | ({"cursor": cursor} if cursor else {})
        page = p.as_(issuer).get("/v1/inbox", params=params, expect=200).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == inbox


def test_min_position_gives_read_your_writes(p: Province) -> None:
    for _ in range(3):
        response = p.as_("approver").post("/v1/checks", json=p.check_body(), expect=201)
        check_id, position = response.json()["id"], response.headers["X-Event-Position"]
        for who, path in (("approver", "/v1/checks"), ("auditor", "/v1/checks"), ("gulou", "/v1/inbox")):
            page = p.as_(who).get(path, params={"min_position": position, "limit": 500}, expect=200).json()
            assert check_id in [item["id"] for item in page["items"]], (who, path)
        accepted = p.as_("gulou").post(f"/v1/checks/{check_id}/accept", json={}, expect=200)
        page = p.as_("gulou").get(
            "/v1/checks", params={"min_position": accepted.headers["X-Event-Position"], "status": "accepted", "limit": 500}
        ).json()
        assert check_id in [item["id"] for item in page["items"]]
        coverage = p.as_("auditor").get("/v1/coverage", params={"min_position": accepted.headers["X-Event-Position"]}, expect=200).json()
        assert coverage["as_of_position"] >= int(accepted.headers["X-Event-Position"])
        # Single-check reads take min_position too.
        p.as_("approver").get(f"/v1/checks/{check_id}", params={"min_position": position}, expect=200)
        p.as_("approver").get(f"/v1/checks/{check_id}/history", params={"min_position": position}, expect=200)


def test_min_position_far_ahead_is_503_not_caught_up(sqlite_province: Province) -> None:
    """Once (it takes 5 s): a position the log has not reached."""
    far = sqlite_province.position() + 10**6
    response = sqlite_province.as_("auditor").get("/v1/checks", params={"min_position": far}, expect=503)
    assert response.json()["code"] == "not_caught_up"
    assert response.headers["content-type"].startswith("application/problem+json")
