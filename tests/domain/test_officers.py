"""Officers on the Department aggregate (API.md §12) and the officer every check event records, on every
store: the roster's rules, the one check of a named officer (``invalid_officer``), and check events stored
before the ``officer`` field existed still loading (eventsourcing upcasting, class_version 2)."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from domain.check import Check
from domain.errors import Conflict, Forbidden, InvalidInput, InvalidOfficer, NotFound
from domain.platform import Platform
from tests.domain.world import (
    APPLICANT_ID,
    APPLICANT_NAME,
    APPROVER,
    CITY_POLICE,
    GULOU_POLICE,
    build_province,
    new_check_id,
    raise_check,
)


@pytest.fixture
def app(database_url, make_platform) -> Platform:
    platform = make_platform(database_url)
    build_province(platform)
    platform.add_officer(GULOU_POLICE, "wang.li", "王力")
    platform.add_officer(APPROVER, "chen_m-2", "陈敏")
    return platform


def test_the_roster_records_officers_and_keeps_removed_logins_taken(app: Platform) -> None:
    officer, position = app.add_officer(GULOU_POLICE, "li.na", "李娜")
    assert (officer.login, officer.name, officer.status) == ("li.na", "李娜", "active")
    assert position == app.recorder.max_notification_id()
    assert [o.login for o in app.officers(GULOU_POLICE)] == ["li.na", "wang.li"]
    app.remove_officer(GULOU_POLICE, "li.na")
    assert app.department(GULOU_POLICE).officers["li.na"].status == "removed"
    with pytest.raises(Conflict):
        app.add_officer(GULOU_POLICE, "li.na", "李娜")  # history's officer names one person
    with pytest.raises(Conflict):
        app.add_officer(GULOU_POLICE, "wang.li", "王力")
    app.add_officer(CITY_POLICE, "wang.li", "王力")  # the same login in another department is another officer
    with pytest.raises(NotFound):
        app.remove_officer(GULOU_POLICE, "li.na")
    with pytest.raises(NotFound):
        app.remove_officer(GULOU_POLICE, "nobody")


@pytest.mark.parametrize("login", ["ab", "x" * 65, "Wang", "wang li", "王力", "a/b", "", "a@b"])
def test_a_login_is_3_to_64_of_lowercase_letters_digits_dot_underscore_and_dash(app: Platform, login: str) -> None:
    before = app.recorder.max_notification_id()
    with pytest.raises(InvalidInput):
        app.add_officer(GULOU_POLICE, login, "某人")
    assert app.recorder.max_notification_id() == before
    app.add_officer(GULOU_POLICE, "a.b_c-9" + "x" * 57, "某人")  # 64 characters


def test_every_check_event_records_the_officer_who_acted_or_none(app: Platform) -> None:
    check, _ = app.raise_check(APPROVER, **_body(), officer="chen_m-2")
    app.accept(check.id, GULOU_POLICE, "wang.li")
    app.request_info(check.id, GULOU_POLICE, "请提供曾用名")  # a call naming no officer
    app.supply_info(check.id, APPROVER, "林某", officer="chen_m-2")
    app.reply(check.id, GULOU_POLICE, "confirmed", {}, 90, officer="wang.li")
    app.close_check(check.id, APPROVER, "exempted", officer="chen_m-2")
    events = app.check_events(check.id)
    assert [(type(e).__name__, e.officer) for e in events] == [
        ("Raised", "chen_m-2"),
        ("Accepted", "wang.li"),
        ("InfoRequested", None),
        ("InfoSupplied", "chen_m-2"),
        ("Replied", "wang.li"),
        ("Closed", "chen_m-2"),
    ]


@pytest.mark.parametrize(
    "officer",
    ["nobody", "chen_m-2", "", "removed.one"],
    ids=["unknown", "another-departments", "empty", "removed"],
)
def test_a_command_naming_no_active_officer_of_the_caller_is_refused_and_records_nothing(
    app: Platform, officer: str
) -> None:
    app.add_officer(GULOU_POLICE, "removed.one", "前警员")
    app.remove_officer(GULOU_POLICE, "removed.one")
    check_id = new_check_id(app)
    before = app.recorder.max_notification_id()
    for command in (
        lambda: app.accept(check_id, GULOU_POLICE, officer),
        lambda: app.reply(check_id, GULOU_POLICE, "confirmed", {}, 90, officer=officer),
        lambda: app.decline(check_id, GULOU_POLICE, "no_record", "查无此人", officer=officer),
        lambda: app.forward(check_id, GULOU_POLICE, CITY_POLICE, "辖区", officer=officer),
    ):
        with pytest.raises(InvalidOfficer):
            command()
    assert app.recorder.max_notification_id() == before
    with pytest.raises(InvalidOfficer):
        raise_check_with(app, "wang.li")  # an officer of the issuer does not act for the approver


def test_the_party_rule_comes_before_the_officer_rule(app: Platform) -> None:
    check_id = new_check_id(app)
    with pytest.raises(Forbidden):
        app.accept(check_id, CITY_POLICE, "nobody")


def test_check_events_stored_before_officers_existed_load_with_officer_none(app: Platform) -> None:
    """Events of class_version 1 (no ``officer``, no ``class_version`` in their state) are upcast on reading."""
    template, _ = raise_check(app)
    check_id = uuid4()
    old = Check.raise_check(
        check_id,
        category=template.category,
        matter=template.matter,
        approver=template.approver,
        issuer=template.issuer,
        applicant=template.applicant,
        claims=template.claims,
        purpose=template.purpose,
        consent=template.consent,
        sla_seconds=3600,
    )
    old.accept(GULOU_POLICE)
    stored = []
    for event in old.collect_events():
        record = app.mapper.to_stored_event(event)
        state = json.loads(record.state)
        assert state.pop("class_version") == 2 and state.pop("officer") is None
        stored.append(type(record)(record.originator_id, record.originator_version, record.topic, json.dumps(state).encode()))
    app.recorder.insert_events(stored)

    fresh = app.check(check_id)
    assert fresh.status == "accepted"
    assert [e.officer for e in app.check_events(check_id)] == [None, None]
    app.reply(fresh, GULOU_POLICE, "confirmed", {}, 90, officer="wang.li")  # a version-2 event after version-1 ones
    assert [e.officer for e in app.check_events(check_id)] == [None, None, "wang.li"]


def _body() -> dict[str, object]:
    return {
        "category": "household-registration",
        "matter": {"code": "real-estate-deregistration", "name": "不动产注销登记"},
        "applicant": {"name": APPLICANT_NAME, "id_number": APPLICANT_ID},
        "claims": {},
        "purpose": "不动产注销登记身份一致性核验",
        "consent": {"method": "face", "reference": "face-2024-0001"},
        "issuer": GULOU_POLICE,
    }


def raise_check_with(app: Platform, officer: str) -> None:
    app.raise_check(APPROVER, **_body(), officer=officer)  # type: ignore[arg-type]
