"""API.md §10 end to end on both stores: departments renamed, moved, deactivated and re-activated.

The province of ``tests.api.conftest``: ``gulou`` (police, 350102) and ``city`` (police, 350100) cover
the standard applicant (350102), who routes to gulou (the longer prefix).
"""

from __future__ import annotations

from typing import Any

import pytest

from api.trust import PlatformTrust
from audit.verify import verify_ledger
from domain.department import Department
from tests.api.conftest import Province
from tests.bodies import check_body


def listed(province: Province, department_id: str) -> dict[str, Any]:
    page = province.as_("auditor").get("/v1/departments", params={"limit": 500}, expect=200).json()
    return next(item for item in page["items"] if item["id"] == department_id)


def patch(province: Province, department_id: str, body: dict[str, Any], expect: int = 200) -> dict[str, Any]:
    document: dict[str, Any] = province.admin.patch(f"/v1/departments/{department_id}", json=body, expect=expect).json()
    return document


def department_events(province: Province, department_id: str) -> list[str]:
    stream = province.services.platform.events.get(Department.stream_id(department_id))
    return [type(event).__name__ for event in stream]


def second_station(province: Province) -> str:
    """A second police station for 鼓楼区 350102: the same prefix length as gulou."""
    member = province.department("gulou2", roles=["issuer"], kind="police", region="350102", display="鼓楼区第二派出所")
    return member.id


def test_patch_changes_each_field_as_an_event_and_answers_the_listed_department(province: Province) -> None:
    gulou = province.gulou.id
    assert listed(province, gulou)["status"] == "active"
    before = department_events(province, gulou)
    response = province.admin.patch(
        f"/v1/departments/{gulou}", json={"name": "福州市公安局鼓楼分局（新）", "region": "350111", "status": "inactive"},
        expect=200,
    )
    document = response.json()
    assert int(response.headers["X-Event-Position"]) == province.position()
    assert document == listed(province, gulou)
    assert (document["name"], document["region"], document["status"]) == ("福州市公安局鼓楼分局（新）", "350111", "inactive")
    assert department_events(province, gulou) == [*before, "Renamed", "Moved", "Deactivated"]
    # each field alone, back again
    patch(province, gulou, {"status": "active"})
    patch(province, gulou, {"name": "福州市公安局鼓楼分局"})
    assert department_events(province, gulou)[-2:] == ["Reactivated", "Renamed"]
    assert listed(province, gulou)["status"] == "active"


def test_a_patch_that_changes_nothing_records_nothing(province: Province) -> None:
    gulou = province.gulou
    head = province.position()
    response = province.admin.patch(
        f"/v1/departments/{gulou.id}", json={"name": gulou.document["name"], "region": "350102", "status": "active"},
        expect=200,
    )
    assert province.position() == head
    assert int(response.headers["X-Event-Position"]) <= head
    province.admin.patch(f"/v1/departments/{gulou.id}", json={}, expect=200)
    assert province.position() == head


def test_a_second_station_for_a_region_is_ambiguous_until_one_is_deactivated(province: Province) -> None:
    """The issue's case: adding a second police station for 350102 made every raise for it ambiguous_route."""
    approver = province.as_("approver")
    second = second_station(province)
    refused = approver.post("/v1/checks", json=check_body(), expect=422).json()
    assert refused["code"] == "ambiguous_route"

    patch(province, second, {"status": "inactive"})
    routed = approver.post("/v1/checks", json=check_body(), expect=201).json()
    assert routed["issuer"] == province.gulou.id
    # an inactive department cannot be named as issuer, nor as the target of a forward
    named = approver.post("/v1/checks", json=check_body(issuer=second), expect=422).json()
    assert named["code"] == "invalid_issuer"
    forward = province.as_("gulou").post(
        f"/v1/checks/{routed['id']}/forward", json={"to": second, "reason": "辖区调整"}, expect=422
    ).json()
    assert forward["code"] == "invalid_issuer"
    # its key answers 401 while it is inactive
    assert province.as_("gulou2").get("/v1/inbox").status_code == 401

    # re-activation restores everything: routing (ambiguous again), naming, its keys
    patch(province, second, {"status": "active"})
    assert approver.post("/v1/checks", json=check_body(), expect=422).json()["code"] == "ambiguous_route"
    assert approver.post("/v1/checks", json=check_body(issuer=second), expect=201).json()["issuer"] == second
    province.as_("gulou2").get("/v1/inbox", expect=200)

    # deactivating the other station instead routes to the second one
    patch(province, province.gulou.id, {"status": "inactive"})
    assert approver.post("/v1/checks", json=check_body(), expect=201).json()["issuer"] == second
    forwarded = province.as_("gulou2").post(
        f"/v1/checks/{routed['id']}/forward", json={"to": province.city.id, "reason": "辖区调整"}, expect=404
    )
    assert forwarded.json()["code"] == "not_found"  # gulou2 is no party of that check


def test_the_checks_of_an_inactive_department_stay_readable_by_the_other_parties(province: Province) -> None:
    check = province.replied_check()
    gulou, approver = province.gulou.id, province.approver.id
    patch(province, gulou, {"status": "inactive"})
    assert province.as_("gulou").get(f"/v1/checks/{check['id']}").status_code == 401
    seen = province.as_("approver").get(f"/v1/checks/{check['id']}", expect=200).json()
    assert seen["issuer"] == gulou and seen["proof"]["jws"]
    province.as_("auditor").get(f"/v1/checks/{check['id']}/history", expect=200)
    province.as_("approver").get(f"/v1/proofs/{check['proof']['id']}", expect=200)
    # its proofs still verify, and the approver can still close on them
    verdict = province.as_("approver").post("/v1/proofs/verify", json={"jws": seen["proof"]["jws"]}, expect=200).json()
    assert verdict["valid"] is True
    province.act(check["id"], "close", "approver", {"outcome": "exempted"})

    # an inactive approver: the issuer still reads and answers the check it raised
    patch(province, gulou, {"status": "active"})
    open_check = province.raise_check()
    assert open_check["issuer"] == gulou
    patch(province, approver, {"status": "inactive"})
    assert province.as_("approver").get(f"/v1/checks/{open_check['id']}").status_code == 401
    province.as_("gulou").get(f"/v1/checks/{open_check['id']}", expect=200)
    province.act(open_check["id"], "accept", "gulou")
    patch(province, approver, {"status": "active"})
    assert province.as_("approver").get(f"/v1/checks/{open_check['id']}", expect=200).json()["status"] == "accepted"


def test_a_region_change_applies_to_checks_raised_afterwards(province: Province) -> None:
    approver = province.as_("approver")
    earlier = approver.post("/v1/checks", json=check_body(), expect=201).json()
    assert earlier["issuer"] == province.gulou.id
    patch(province, province.gulou.id, {"region": "350111"})  # gulou no longer covers 350102
    later = approver.post("/v1/checks", json=check_body(), expect=201).json()
    assert later["issuer"] == province.city.id  # the next longest prefix, 3501
    # the earlier check stays addressed to gulou, which still answers it
    province.act(earlier["id"], "reply", "gulou")
    # coverage counts a check under its approver's region at raising, also after the approver moved
    patch(province, province.approver.id, {"region": "350203"})
    moved = approver.post("/v1/checks", json=check_body(), expect=201).json()
    province.act(earlier["id"], "close", "approver", {"outcome": "exempted"})
    position = province.position()
    fuzhou = approver.get("/v1/coverage", params={"region": "350100", "min_position": position}, expect=200).json()
    xiamen = approver.get("/v1/coverage", params={"region": "350200", "min_position": position}, expect=200).json()
    assert (fuzhou["totals"]["raised"], fuzhou["totals"]["closed_exempted"]) == (2, 1)
    assert (xiamen["totals"]["raised"], xiamen["totals"]["closed_exempted"]) == (1, 0)
    assert moved["approver"] == province.approver.id


def test_unknown_department_is_404_and_only_the_admin_may_patch(province: Province) -> None:
    head = province.position()
    for unknown in ("no-such-dept", "UPPER", "x"):
        problem = patch(province, unknown, {"status": "inactive"}, expect=404)
        assert problem["code"] == "not_found"
    # 404 is decided before the body is read (API.md §1's order)
    assert patch(province, "no-such-dept", {"status": "closed"}, expect=404)["code"] == "not_found"
    for who in ("approver", "gulou", "auditor"):
        problem = province.as_(who).patch(f"/v1/departments/{province.gulou.id}", json={"status": "inactive"}, expect=403)
        assert problem.json()["code"] == "forbidden"
    assert province.anonymous.patch(f"/v1/departments/{province.gulou.id}", json={}).status_code == 401
    assert province.position() == head


@pytest.mark.parametrize(
    "body",
    [
        {"status": "closed"},
        {"status": None},
        {"name": None},
        {"name": ""},
        {"name": "a\u0000b"},
        {"region": "35010"},
        {"region": "35010x"},
        {"region": 350102},
        {"region": None},
        {"kind": "civil-affairs"},
        {"roles": ["approver"]},
        {"uscc": "x"},
        ["status", "inactive"],
    ],
)
def test_bad_patch_bodies_are_422_and_change_nothing(province: Province, body: Any) -> None:
    head = province.position()
    problem = patch(province, province.gulou.id, body, expect=422)
    assert problem["code"] == "validation_error"
    assert province.position() == head
    assert listed(province, province.gulou.id)["status"] == "active"


def test_patch_with_broken_json_or_media_type(province: Province) -> None:
    path = f"/v1/departments/{province.gulou.id}"
    broken = province.admin.request("PATCH", path, content=b"{", headers={"Content-Type": "application/json"}, expect=400)
    assert broken.json()["code"] == "malformed_json"
    text = province.admin.request("PATCH", path, content=b"status=inactive", headers={"Content-Type": "text/plain"}, expect=415)
    assert text.json()["code"] == "unsupported_media_type"


def test_a_department_created_later_with_a_fresh_uscc_routes_after_the_old_one_moved(province: Province) -> None:
    """Replacing a station: the old one moves away, the new one takes its region, routing is never stuck."""
    second = second_station(province)
    patch(province, province.gulou.id, {"region": "350111", "name": "福州市公安局晋安分局"})
    routed = province.as_("approver").post("/v1/checks", json=check_body(), expect=201).json()
    assert routed["issuer"] == second


def test_a_renamed_department_seals_valid_proofs_and_the_audit_holds(province: Province) -> None:
    """The certificate keeps the name it was issued under (it names the department by its URI, which does
    not change); proofs sealed after a rename carry the new name and verify; `nocert audit verify` accepts
    every department event of the lifecycle."""
    gulou = province.gulou.id
    patch(province, gulou, {"name": "福州市公安局鼓楼分局（更名）", "region": "350111"})
    patch(province, gulou, {"status": "inactive"})
    patch(province, gulou, {"status": "active", "region": "350102"})
    check = province.replied_check()
    verdict = province.as_("approver").post("/v1/proofs/verify", json={"jws": check["proof"]["jws"]}, expect=200).json()
    assert verdict["valid"] is True and verdict["payload"]["issuer"]["name"] == "福州市公安局鼓楼分局（更名）"
    services = province.services
    report = verify_ledger(
        services.platform, services.database, services.log, services.keystore.root()[1],
        trust=PlatformTrust(services.platform), workers=1,
    )
    assert report.ok, report.problems
    assert report.proofs == 1
