"""API.md §4 masking (issue #11.4): every value under a member whose name ends in ``id_number``, in any
case, of any JSON type, at any depth, is masked for auditors, former issuers and in lists — in the check,
``?version``, ``?as_of``, the history and the lists. Failed before the fix (integers, lists and
``Mother_ID_NUMBER`` came back in full)."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import Province, masked
from tests.bodies import OTHER_NUMBER

NUMBER = 350104197002027817
LISTED = "35010219850505321X"
MOTHER = "350102196001011234"
NESTED = "350102197701017777"


def hostile_claims() -> dict[str, Any]:
    return {
        "int_id_number": NUMBER,
        "list_id_number": [LISTED, {"deep": MOTHER}],
        "Mother_ID_NUMBER": MOTHER,
        "family": [{"spouse": {"Spouse_Id_Number": NESTED}}],
        "other_id_number": OTHER_NUMBER,
        "none_id_number": None,
    }


FULL = [str(NUMBER), LISTED, MOTHER, NESTED, OTHER_NUMBER]


def assert_masked(document: Any) -> None:
    text = json.dumps(document, ensure_ascii=False)
    for number in FULL:
        assert number not in text, (number, text[:2000])


def test_every_id_number_member_is_masked_for_auditors_former_issuers_and_lists(shared_province: Province) -> None:
    p = shared_province
    check = p.raise_check(claims=hostile_claims())
    check_id = check["id"]
    raised_at = check["raised_at"]
    # The approver sees everything in full.
    full = p.as_("approver").get(f"/v1/checks/{check_id}", expect=200).json()
    assert full["claims"]["int_id_number"] == NUMBER and full["claims"]["Mother_ID_NUMBER"] == MOTHER
    # gulou forwards to city: gulou is now a former issuer.
    p.act(check_id, "forward", "gulou")
    p.settle()
    for who in ("auditor", "gulou"):
        caller = p.as_(who)
        document = caller.get(f"/v1/checks/{check_id}", expect=200).json()
        assert_masked(document)
        claims = document["claims"]
        assert claims["int_id_number"] == masked(str(NUMBER))
        assert claims["list_id_number"] == [masked(LISTED), {"deep": masked(MOTHER)}]
        assert claims["Mother_ID_NUMBER"] == masked(MOTHER)
        assert claims["family"][0]["spouse"]["Spouse_Id_Number"] == masked(NESTED)
        assert claims["none_id_number"] is None
        assert_masked(caller.get(f"/v1/checks/{check_id}", params={"version": 1}, expect=200).json())
        assert_masked(caller.get(f"/v1/checks/{check_id}", params={"as_of": raised_at}, expect=200).json())
        assert_masked(caller.get(f"/v1/checks/{check_id}/history", expect=200).json())
    listed = p.as_("auditor").get("/v1/checks", params={"limit": 500}, expect=200).json()["items"]
    assert any(item["id"] == check_id for item in listed)
    assert_masked(listed)
    # The issuer addressed now sees its list masked too (lists mask for every reader).
    assert_masked(p.as_("city").get("/v1/checks", params={"limit": 500}, expect=200).json()["items"])
    assert_masked(p.as_("city").get("/v1/inbox", params={"limit": 500}, expect=200).json()["items"])
