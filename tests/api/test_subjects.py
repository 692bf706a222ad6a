"""API.md §14: the citizen's access log (role ``citizen_portal``, the blind index) and erasure, on both
stores through HTTP."""

from __future__ import annotations

import re
from typing import Any

from api.gateway import PUBLIC_PATHS
from domain.identifiers import make_id_number
from tests.api.conftest import Province, masked
from tests.bodies import APPLICANT, OTHER_NUMBER

ACCESS_FIELDS = {
    "check_id", "raised_at", "approver", "issuer", "category", "matter", "purpose", "consent", "status", "outcome",
    "replied_at", "closed_at",
}


def portal(province: Province) -> Any:
    if "portal" not in province.members:
        province.department("portal", id="fj-citizen-app", display="闽政通", roles=["citizen_portal"], kind="portal", region="350000")
    return province.as_("portal")


def accesses(province: Province, number: str, **extra: Any) -> dict[str, Any]:
    province.settle()
    result: dict[str, Any] = portal(province).post("/v1/subjects/accesses", json={"id_number": number, **extra}, expect=200).json()
    return result


def test_the_access_log_lists_the_persons_checks_newest_first_with_who_asked(province: Province) -> None:
    first = province.raise_check()
    second = province.act(province.raise_check()["id"], "reply", "gulou")
    province.act(second["id"], "close", "approver", {"outcome": "exempted"})
    # Another person's check that only mentions APPLICANT in its claims is not listed.
    someone_else = make_id_number("35010219770707111")
    province.raise_check(applicant={"name": "陈某", "id_number": someone_else}, claims={"spouse_id_number": APPLICANT})
    log = accesses(province, APPLICANT.lower() if APPLICANT[-1] == "X" else APPLICANT)
    assert log["subject"] == masked(APPLICANT)
    assert [item["check_id"] for item in log["items"]] == [second["id"], first["id"]]
    item = log["items"][0]
    assert set(item) == ACCESS_FIELDS
    assert item["approver"] == {"id": "fz-estate", "name": "福州市不动产登记中心"}
    assert item["issuer"] == {"id": "fz-gulou-police", "name": "福州市公安局鼓楼分局"}
    assert item["category"] == {"code": "household-registration", "name": "户籍证明"}
    assert item["consent"] == {"method": "face"}
    assert (item["status"], item["outcome"]) == ("closed", "exempted")
    assert item["replied_at"] is not None and item["closed_at"] is not None
    assert log["next_cursor"] is None
    # The number that only appears in claims has no access log entry of its own.
    assert accesses(province, OTHER_NUMBER)["items"] == []
    assert [i["check_id"] for i in accesses(province, someone_else)["items"]] != []


def test_the_access_log_pages_and_refuses_bad_numbers(province: Province) -> None:
    ids = [province.raise_check()["id"] for _ in range(3)]
    page = accesses(province, APPLICANT, limit=2)
    rest = accesses(province, APPLICANT, limit=2, cursor=page["next_cursor"])
    assert [i["check_id"] for i in page["items"] + rest["items"]] == ids[::-1] and rest["next_cursor"] is None
    bad = portal(province).post("/v1/subjects/accesses", json={"id_number": APPLICANT[:-1] + "0" if APPLICANT[-1] != "0" else APPLICANT[:-1] + "1"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_id_number"
    assert portal(province).post("/v1/subjects/accesses", json={"id_number": APPLICANT, "limit": 0}).status_code == 422
    assert accesses(province, make_id_number("35010219600606222"))["items"] == []


def test_auditors_may_read_the_access_log_and_parties_may_not(province: Province) -> None:
    province.raise_check()
    province.settle()
    body = {"id_number": APPLICANT}
    assert len(province.as_("auditor").post("/v1/subjects/accesses", json=body, expect=200).json()["items"]) == 1
    for who in ("approver", "gulou", "admin"):
        assert province.as_(who).post("/v1/subjects/accesses", json=body).status_code == 403


def test_every_lookup_is_recorded_without_the_number(province: Province) -> None:
    province.raise_check()
    accesses(province, APPLICANT)
    accesses(province, make_id_number("35010219600606222"))
    with province.services.database.reading() as cursor:
        rows = cursor.execute("SELECT at, principal, results FROM subject_lookups ORDER BY at, id").fetchall()
        columns = cursor.execute("SELECT * FROM subject_lookups").fetchall()
    assert sorted((principal, int(results)) for _, principal, results in rows) == [("fj-citizen-app", 0), ("fj-citizen-app", 1)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", at) for at, _, _ in rows)
    assert not any(APPLICANT[6:14] in str(value) for row in columns for value in row)


def test_the_citizen_portal_can_call_nothing_else(province: Province) -> None:
    caller = portal(province)
    check = province.raise_check()
    allowed = {("POST", "/v1/subjects/accesses"), ("GET", "/v1/categories")}
    operations = [
        (method.upper(), template)
        for template, item in province.app.openapi()["paths"].items()
        for method in item
        if template.startswith("/v1")
    ]
    tried = 0
    for method, template in operations:
        if (method, template) in allowed or template in PUBLIC_PATHS:  # need no key (API.md §1): public to all
            continue
        response = caller.request(method, re.sub(r"\{[^}]+\}", check["id"], template), json={})
        assert response.status_code == 403, f"{method} {template}: {response.status_code}"
        tried += 1
    assert tried > 20
    assert caller.get("/v1/categories").status_code == 200
    assert caller.get("/v1/checks").status_code == 403


def test_citizen_portal_is_a_role_of_its_own(province: Province) -> None:
    body = {"id": "odd-portal", "name": "x", "uscc": "91350100M000100Y43", "roles": ["citizen_portal", "auditor"],
            "kind": "portal", "region": "350000"}
    response = province.admin.post("/v1/departments", json=body)
    assert response.status_code == 422


def test_a_portal_key_is_refused_even_for_unknown_paths(province: Province) -> None:
    assert portal(province).get("/v1/no-such-thing").status_code == 403
