"""Check lists and the inbox (API.md §4): scopes, filters, masking, order and cursor pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.domain.world import (
    APPLICANT_ID,
    APPROVER,
    CITY_POLICE,
    GULOU_CIVIL,
    GULOU_POLICE,
    HOUSEHOLD,
    KINSHIP,
    NO_RECORD,
    OTHER_APPROVER,
    OTHER_ID,
    XIAMEN_POLICE,
    build_province,
    raise_check,
)
from tests.projections import recount
from tests.projections.conftest import Clock

KINSHIP_CLAIMS = {"relation": "parent", "other_id_number": OTHER_ID}


def story(app: Any) -> dict[str, Any]:
    build_province(app)
    c: dict[str, Any] = {}
    c["raised"] = raise_check(app)[0].id
    c["accepted"] = raise_check(app, category=NO_RECORD)[0].id
    app.accept(c["accepted"], GULOU_POLICE)
    c["info"] = raise_check(app)[0].id
    app.accept(c["info"], GULOU_POLICE)
    app.request_info(c["info"], GULOU_POLICE, "曾用名?")
    c["forwarded"] = raise_check(app)[0].id
    app.forward(c["forwarded"], GULOU_POLICE, CITY_POLICE, "市局管辖")
    c["replied"] = raise_check(app)[0].id
    app.reply(c["replied"], GULOU_POLICE, "confirmed", {"household": "鼓楼"}, 90)
    c["declined"] = raise_check(app)[0].id
    app.decline(c["declined"], GULOU_POLICE, "no_record", "")
    c["withdrawn"] = raise_check(app)[0].id
    app.withdraw(c["withdrawn"], APPROVER, "撤回")
    c["closed"] = raise_check(app)[0].id
    app.close_check(c["closed"], APPROVER, "commitment")
    c["xiamen"] = raise_check(app, approver=OTHER_APPROVER, issuer=XIAMEN_POLICE)[0].id
    c["kinship"] = raise_check(app, approver=GULOU_CIVIL, category=KINSHIP, issuer=GULOU_CIVIL, claims=KINSHIP_CLAIMS)[0].id
    c["civil_approver"] = raise_check(app, approver=GULOU_CIVIL)[0].id
    return c


def walk(fetch: Any, limit: int) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor; checks each page's size."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = fetch(limit=limit, cursor=cursor)
        assert len(page) <= limit
        items.extend(page)
        if cursor is None:
            return items
        assert len(page) == limit


@pytest.fixture
def listed(durable_database_url: str, make_stack) -> tuple[Any, dict[str, Any], Clock]:
    clock = Clock()
    stack = make_stack(durable_database_url, clock=clock)
    checks = story(stack.app)
    stack.sync()
    return stack, checks, clock


def expected(stack: Any, clock: Clock, keep: Any) -> list[dict[str, Any]]:
    items = [recount.list_item(check, clock()) for check in recount.all_checks(stack.app, stack.log) if keep(check)]
    return sorted(items, key=lambda item: (item["raised_at"], item["id"]), reverse=True)


def test_auditor_list_is_every_check_newest_first_masked(listed) -> None:
    stack, checks, clock = listed
    items, next_cursor = stack.views.list_checks(limit=500)
    assert next_cursor is None
    assert items == expected(stack, clock, lambda check: True)
    assert len(items) == len(checks)
    text = json.dumps(items, ensure_ascii=False)
    assert APPLICANT_ID not in text and OTHER_ID not in text  # lists mask every identity number
    assert APPLICANT_ID[:6] + "********" + APPLICANT_ID[-4:] in text
    replied = next(item for item in items if item["id"] == str(checks["replied"]))
    assert replied["proof"]["jws"] is None and replied["proof"]["conclusion"] == "confirmed"
    kinship = next(item for item in items if item["id"] == str(checks["kinship"]))
    assert kinship["claims"]["other_id_number"] == OTHER_ID[:6] + "********" + OTHER_ID[-4:]


def test_scopes_and_filters(listed) -> None:
    stack, checks, clock = listed
    views = stack.views

    def ids(**filters: Any) -> list[str]:
        return [item["id"] for item in walk(lambda **page: views.list_checks(**filters, **page), 3)]

    def want(keep: Any) -> list[str]:
        return [item["id"] for item in expected(stack, clock, keep)]

    assert ids(approver=APPROVER) == want(lambda c: c.approver == APPROVER)
    assert ids(approver=OTHER_APPROVER) == [str(checks["xiamen"])]
    # issuers see what is addressed to them now: the forwarded check moved to the city police
    assert str(checks["forwarded"]) not in ids(issuer=GULOU_POLICE)
    assert ids(issuer=CITY_POLICE) == [str(checks["forwarded"])]
    assert ids(issuer=GULOU_POLICE) == want(lambda c: c.issuer == GULOU_POLICE)
    # a department with both roles: what it raised and what it is asked
    assert ids(party=GULOU_CIVIL) == want(lambda c: GULOU_CIVIL in (c.approver, c.issuer))
    assert set(ids(party=GULOU_CIVIL)) == {str(checks["kinship"]), str(checks["civil_approver"])}
    for status in ("raised", "accepted", "info_requested", "replied", "declined", "withdrawn", "closed"):
        assert ids(status=status) == want(lambda c, s=status: c.status == s)
    assert ids(category=NO_RECORD) == [str(checks["accepted"])]
    assert ids(approver=APPROVER, status="raised", category=HOUSEHOLD) == want(
        lambda c: c.approver == APPROVER and c.status == "raised" and c.category == HOUSEHOLD
    )

    assert ids(overdue=True) == []
    assert ids(overdue=False) == want(lambda c: True)
    clock.advance(hours=25)  # household checks (24 h) still open and unanswered are overdue now
    overdue = want(lambda c: c.status in ("raised", "accepted", "info_requested") and clock() > c.due_at)
    assert overdue and ids(overdue=True) == overdue
    assert ids(overdue=False) == want(lambda c: str(c.id) not in overdue)
    assert all(item["overdue"] for item in views.list_checks(overdue=True, limit=500)[0])
    assert stack.views.list_checks(limit=500)[0] == expected(stack, clock, lambda c: True)


def test_inbox_is_open_checks_addressed_to_the_issuer_most_urgent_first(listed) -> None:
    stack, checks, clock = listed
    app = stack.app
    items = walk(lambda **page: stack.views.inbox(GULOU_POLICE, **page), 1)
    want = sorted(
        (
            recount.list_item(check, clock())
            for check in recount.all_checks(app, stack.log)
            if check.issuer == GULOU_POLICE and check.status in ("raised", "accepted", "info_requested")
        ),
        key=lambda item: (item["due_at"], item["id"]),
    )
    assert items == want
    assert {item["id"] for item in items} == {str(checks[n]) for n in ("raised", "accepted", "info", "civil_approver")}
    assert [item["id"] for item in stack.views.inbox(CITY_POLICE)[0]] == [str(checks["forwarded"])]
    assert stack.views.inbox(XIAMEN_POLICE)[0][0]["id"] == str(checks["xiamen"])
    assert stack.views.inbox("nobody")[0] == []

    app.reply(checks["raised"], GULOU_POLICE, "not_confirmed", {}, 30)
    stack.sync()
    assert str(checks["raised"]) not in [item["id"] for item in stack.views.inbox(GULOU_POLICE)[0]]


def test_bad_arguments_are_value_errors(listed) -> None:
    stack, _, _ = listed
    views = stack.views
    _, list_cursor = views.list_checks(limit=1)
    _, inbox_cursor = views.inbox(GULOU_POLICE, limit=1)
    assert list_cursor and inbox_cursor
    for bad in ("", "???", "bm90IGpzb24", "WzEsMiwzXQ", inbox_cursor, "é"):
        with pytest.raises(ValueError):
            views.list_checks(cursor=bad)
    with pytest.raises(ValueError):
        views.inbox(GULOU_POLICE, cursor=list_cursor)
    for limit in (0, 501, -1, True):
        with pytest.raises(ValueError):
            views.list_checks(limit=limit)
        with pytest.raises(ValueError):
            views.inbox(GULOU_POLICE, limit=limit)
    with pytest.raises(ValueError):
        views.list_checks(status="open")
    with pytest.raises(ValueError):
        views.list_checks(category="no-such-category")
