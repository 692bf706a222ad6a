"""Exemption coverage (API.md §6) against numbers this test works out from a scripted story."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from domain.platform import Platform
from domain.proof import proof_id_of
from domain.timefmt import utcnow
from tests.domain.world import (
    APPROVER,
    CITY_POLICE,
    GULOU_CIVIL,
    GULOU_POLICE,
    HOUSEHOLD,
    KINSHIP,
    NO_RECORD,
    OTHER_APPROVER,
    XIAMEN_POLICE,
    build_province,
    raise_check,
)
from tests.projections import recount

FAST = "fast-proof"  # sla 0.0003 h (1.08 s): overdue after a short sleep
DATA_ONLY = "data-only"  # active, but not checkable online
RETIRED = "retired-proof"


def zero_row() -> dict[str, Any]:
    return {
        "raised": 0,
        "open": 0,
        "overdue_open": 0,
        "replied_confirmed": 0,
        "replied_not_confirmed": 0,
        "declined": 0,
        "withdrawn": 0,
        "closed_exempted": 0,
        "closed_commitment": 0,
        "closed_applicant_submitted": 0,
        "exemption_rate": None,
        "median_answer_seconds": None,
        "on_time_rate": None,
    }


def script(app: Platform) -> dict[str, Any]:
    """The story; returns the checks by name."""
    build_province(app)
    app.create_category(FAST, "加急证明", "police", ["collaboration"], 0.0003, None)
    app.create_category(DATA_ONLY, "数据共享证明", "police", ["data_sharing"], 24, None)
    app.create_category(RETIRED, "已取消证明", "police", ["collaboration"], 24, None)
    app.change_category(RETIRED, {}, "retired")
    c: dict[str, Any] = {}

    def raised(name: str, **kwargs: Any) -> Any:
        c[name] = raise_check(app, **kwargs)[0].id
        return c[name]

    # Fast checks first: they must go overdue while the household story runs and a short sleep passes.
    raised("f1", category=FAST)
    raised("f2", category=FAST, approver=OTHER_APPROVER, issuer=XIAMEN_POLICE)
    app.accept(c["f2"], XIAMEN_POLICE)
    raised("f3", category=FAST)
    app.reply(c["f3"], GULOU_POLICE, "confirmed", {}, 90)
    raised("f4", category=FAST)
    app.forward(c["f4"], GULOU_POLICE, CITY_POLICE, "市局管辖")
    raised("f5", category=FAST)

    raised("h1")
    app.accept(c["h1"], GULOU_POLICE)
    app.reply(c["h1"], GULOU_POLICE, "confirmed", {"household": "鼓楼"}, 90)
    app.close_check(c["h1"], APPROVER, "exempted")
    raised("h2")
    app.reply(c["h2"], GULOU_POLICE, "not_confirmed", {}, 90)
    app.close_check(c["h2"], APPROVER, "applicant_submitted")
    raised("h3")
    app.decline(c["h3"], GULOU_POLICE, "no_record", "查无此人")
    app.close_check(c["h3"], APPROVER, "commitment")
    raised("h4", approver=OTHER_APPROVER, issuer=XIAMEN_POLICE)
    app.withdraw(c["h4"], OTHER_APPROVER, "申请人撤回")
    raised("h5", approver=OTHER_APPROVER, issuer=XIAMEN_POLICE)
    app.accept(c["h5"], XIAMEN_POLICE)
    app.request_info(c["h5"], XIAMEN_POLICE, "曾用名?")
    raised("h6", approver=GULOU_CIVIL)
    app.reply(c["h6"], GULOU_POLICE, "confirmed", {}, 90)
    raised("h7")
    app.reply(c["h7"], GULOU_POLICE, "confirmed", {}, 90)
    app.revoke_proof(proof_id_of(c["h7"]), GULOU_POLICE, "误出具")  # no change to coverage

    time.sleep(1.3)  # every fast check is now past due
    app.reply(c["f5"], GULOU_POLICE, "confirmed", {}, 90)  # late
    return c


def seconds(app: Platform, check_id: Any) -> float:
    check = app.check(check_id)
    return (check.replied_at - check.created_on).total_seconds()


def test_coverage_of_a_scripted_story(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url)
    app = stack.app
    c = script(app)
    head = stack.sync()
    now = utcnow()

    household = {
        **zero_row(),
        "raised": 7,
        "open": 3,  # h5, h6, h7
        "replied_confirmed": 3,  # h1, h6, h7
        "replied_not_confirmed": 1,  # h2
        "declined": 1,  # h3
        "withdrawn": 1,  # h4
        "closed_exempted": 1,
        "closed_commitment": 1,
        "closed_applicant_submitted": 1,
        "exemption_rate": 2 / 3,
        # five answers: an odd count
        "median_answer_seconds": statistics.median(seconds(app, c[n]) for n in ("h1", "h2", "h3", "h6", "h7")),
        "on_time_rate": 1.0,
    }
    fast = {
        **zero_row(),
        "raised": 5,
        "open": 5,
        "overdue_open": 3,  # f1, f2, f4 (f3 and f5 answered)
        "replied_confirmed": 2,
        # two answers: the mean of the middle two
        "median_answer_seconds": (seconds(app, c["f3"]) + seconds(app, c["f5"])) / 2,
        "on_time_rate": 0.5,  # f5 answered late
    }
    assert fast["median_answer_seconds"] > 0.5  # f5 took more than a second

    document = stack.views.coverage()
    assert document["as_of_position"] == head
    assert document["categories_total"] == 5  # RETIRED is not active
    assert document["categories_online"] == 4  # DATA_ONLY is not online
    rows = {row["code"]: {k: v for k, v in row.items() if k != "code"} for row in document["categories"]}
    assert list(rows) == sorted([HOUSEHOLD, NO_RECORD, KINSHIP, FAST, DATA_ONLY, RETIRED])
    assert rows[HOUSEHOLD] == {"name": "户籍证明", **household}
    assert rows[FAST] == {"name": "加急证明", **fast}
    for empty in (NO_RECORD, KINSHIP, DATA_ONLY, RETIRED):
        assert {k: v for k, v in rows[empty].items() if k != "name"} == zero_row()
    answers = [seconds(app, c[n]) for n in ("h1", "h2", "h3", "h6", "h7", "f3", "f5")]
    assert document["totals"] == {
        "raised": 12,
        "open": 8,
        "overdue_open": 3,
        "replied_confirmed": 5,
        "replied_not_confirmed": 1,
        "declined": 1,
        "withdrawn": 1,
        "closed_exempted": 1,
        "closed_commitment": 1,
        "closed_applicant_submitted": 1,
        "exemption_rate": 2 / 3,
        "median_answer_seconds": statistics.median(answers),  # seven: odd
        "on_time_rate": 6 / 7,
    }
    assert recount.json_equal({k: v for k, v in document.items() if k != "as_of_position"}, recount.coverage(app, stack.log, now))

    # ?category= narrows categories and totals, not the category counts.
    only_fast = stack.views.coverage(category=FAST)
    assert [row["code"] for row in only_fast["categories"]] == [FAST]
    assert only_fast["totals"] == fast
    assert (only_fast["categories_total"], only_fast["categories_online"]) == (5, 4)

    # ?region= keeps the approvers whose region starts with the code's prefix.
    xiamen = stack.views.coverage(region="350200")  # prefix 3502: OTHER_APPROVER
    assert xiamen["totals"] == {**zero_row(), "raised": 3, "open": 2, "overdue_open": 1, "withdrawn": 1}
    assert (xiamen["categories_total"], xiamen["categories_online"]) == (5, 4)
    gulou = stack.views.coverage(region="350102")  # GULOU_CIVIL only
    assert gulou["totals"] == {
        **zero_row(),
        "raised": 1,
        "open": 1,
        "replied_confirmed": 1,
        "median_answer_seconds": seconds(app, c["h6"]),
        "on_time_rate": 1.0,
    }
    fuzhou = stack.views.coverage(region="350100")  # prefix 3501: APPROVER and GULOU_CIVIL
    assert fuzhou["totals"]["raised"] == 9
    province = stack.views.coverage(region="350000")  # prefix 35: everyone
    assert province["totals"] == document["totals"]
    assert stack.views.coverage(region="110000")["totals"] == zero_row()
    both = stack.views.coverage(category=HOUSEHOLD, region="350200")
    assert both["totals"] == {**zero_row(), "raised": 2, "open": 1, "withdrawn": 1}
    for region in ("350200", "350102", "350100", "350000", "110000"):
        for category in (None, HOUSEHOLD, FAST):
            got = stack.views.coverage(category=category, region=region)
            expected = recount.coverage(app, stack.log, now, category=category, region=region)
            assert recount.json_equal({k: v for k, v in got.items() if k != "as_of_position"}, expected), (category, region)


def test_coverage_refuses_unknown_filters(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url)
    build_province(stack.app)
    stack.sync()
    with pytest.raises(ValueError):
        stack.views.coverage(category="no-such-category")
    for region in ("3501", "35010x", "3501000", "３５０１００"):
        with pytest.raises(ValueError):
            stack.views.coverage(region=region)


def test_coverage_of_an_empty_store(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url)
    assert stack.views.coverage() == {
        "as_of_position": 0,
        "categories_total": 0,
        "categories_online": 0,
        "totals": zero_row(),
        "categories": [],
    }
