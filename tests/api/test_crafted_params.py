"""Crafted query parameters and times (issue #11.6) are 422 ``validation_error``, never 500: a version of
non-ASCII digits or of 5 000 digits, and times whose offset carries them outside the years 1-9999 in UTC,
as ``?as_of`` and as the ``effective_at`` of a key revocation. All of these answered 500 before the fix."""

from __future__ import annotations

import pytest

from tests.api.conftest import Province
from tests.api.test_errors import assert_problem

VERSIONS = ["²", "١", "9" * 5000, "0", "-1", "1e3", " 1", "1" * 19]
TIMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "0001-01-01T00:59:59+01:00"]
NUMBERS = ["9" * 5000, "²", "1" * 30]


@pytest.fixture(scope="module")
def check_id(shared_province: Province) -> str:
    return str(shared_province.raise_check()["id"])


@pytest.mark.parametrize("version", VERSIONS)
def test_crafted_version_is_422(shared_province: Province, check_id: str, version: str) -> None:
    response = shared_province.as_("approver").get(f"/v1/checks/{check_id}", params={"version": version})
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("moment", TIMES)
def test_as_of_outside_the_calendar_is_422(shared_province: Province, check_id: str, moment: str) -> None:
    response = shared_province.as_("auditor").get(f"/v1/checks/{check_id}", params={"as_of": moment})
    assert_problem(response, 422, "validation_error")


def test_extreme_but_real_as_of_is_answered(shared_province: Province, check_id: str) -> None:
    caller = shared_province.as_("auditor")
    assert caller.get(f"/v1/checks/{check_id}", params={"as_of": "9999-12-31T23:59:59Z"}).status_code == 200
    assert caller.get(f"/v1/checks/{check_id}", params={"as_of": "0001-01-01T00:00:00Z"}).status_code == 404


@pytest.mark.parametrize("number", NUMBERS)
def test_crafted_numbers_in_queries_are_422(shared_province: Province, number: str) -> None:
    caller = shared_province.as_("auditor")
    for params in ({"min_position": number}, {"limit": number}):
        assert_problem(caller.get("/v1/checks", params=params), 422, "validation_error")


@pytest.mark.parametrize("moment", TIMES)
def test_revocation_effective_outside_the_calendar_is_422_and_changes_nothing(shared_province: Province, moment: str) -> None:
    p = shared_province
    before = p.position()
    response = p.admin.post(
        f"/v1/departments/{p.civil.id}/keys/{p.civil.kid}/revoke", json={"reason": "泄露", "effective_at": moment}
    )
    assert_problem(response, 422, "validation_error")
    assert p.position() == before


def test_content_length_of_thousands_of_digits_is_no_500(shared_province: Province) -> None:
    p = shared_province
    response = p.client.post(
        "/v1/checks",
        content=b"{}",
        headers={"Authorization": f"Bearer {p.approver.key}", "Content-Type": "application/json", "Content-Length": "9" * 5000},
    )
    assert response.status_code < 500
