"""Escalation (督办, API.md §13) in the domain, on every store: ``Urged`` by the approver, ``Overdue`` by the
platform once per due time; neither changes the status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.check_rules import PLATFORM
from domain.errors import Forbidden, InvalidInput, InvalidTransition
from domain.platform import Platform
from projections.checks import check_document
from tests.domain.world import APPROVER, CITY_POLICE, GULOU_POLICE, build_province, new_check_id


@pytest.fixture
def app(make_platform, database_url, clock) -> Platform:
    platform = make_platform(database_url, clock=clock)
    build_province(platform)
    return platform


def test_the_approver_urges_an_unanswered_check(app: Platform) -> None:
    check_id = new_check_id(app)
    check, position = app.urge(check_id, APPROVER, "请尽快回复")
    assert position > 0 and check.urged == 1 and check.status == "raised"
    app.accept(check_id, GULOU_POLICE)
    app.request_info(check_id, GULOU_POLICE, "请提供曾用名")
    check, _ = app.urge(check_id, APPROVER, "再次督办")
    assert check.urged == 2 and check.status == "info_requested"
    event = app.check_events(check_id)[-1]
    assert type(event).__name__ == "Urged" and event.actor == APPROVER and event.note == "再次督办"
    assert check_document(app.check(check_id), app.clock())["urged"] == 2


def test_only_the_approver_urges_and_only_unanswered_checks(app: Platform) -> None:
    check_id = new_check_id(app)
    with pytest.raises(Forbidden):
        app.urge(check_id, GULOU_POLICE, "自己督办自己")
    with pytest.raises(InvalidInput):
        app.urge(check_id, APPROVER, "x" * 2001)
    app.reply(check_id, GULOU_POLICE, "confirmed", {}, 30)
    with pytest.raises(InvalidTransition):
        app.urge(check_id, APPROVER, "已答复")
    assert app.check(check_id).urged == 0


def test_overdue_is_recorded_once_per_due_time(app: Platform, clock) -> None:
    check_id = new_check_id(app)
    due_at = app.check(check_id).due_at
    assert app.record_overdue(check_id, due_at) is None  # at the due time, not past it
    assert app.record_overdue(check_id, due_at + timedelta(seconds=1)) is not None
    assert app.record_overdue(check_id, due_at + timedelta(hours=5)) is None  # once per due time
    check = app.check(check_id)
    overdue = app.check_events(check_id)[-1]
    assert type(overdue).__name__ == "Overdue" and overdue.actor == PLATFORM and overdue.due_at == due_at
    assert check.status == "raised" and check.overdue_since == overdue.timestamp
    assert check_document(check, clock())["overdue_since"] is not None


def test_a_forward_restarts_the_clock(app: Platform) -> None:
    check_id = new_check_id(app)
    first_due = app.check(check_id).due_at
    app.record_overdue(check_id, first_due + timedelta(seconds=1))
    check, _ = app.forward(check_id, GULOU_POLICE, CITY_POLICE, "属市局管辖")
    assert check.overdue_since is None and check.due_at > first_due
    assert app.record_overdue(check_id, check.due_at) is None
    assert app.record_overdue(check_id, check.due_at + timedelta(seconds=1)) is not None
    kinds = [type(event).__name__ for event in app.check_events(check_id)]
    assert kinds.count("Overdue") == 2 and app.check(check_id).overdue_since is not None


def test_no_overdue_once_answered(app: Platform) -> None:
    check_id = new_check_id(app)
    due_at = app.check(check_id).due_at
    app.decline(check_id, GULOU_POLICE, "no_record", "查无此人")
    assert app.record_overdue(check_id, due_at + timedelta(days=3)) is None
    with pytest.raises(InvalidTransition):
        app.check(check_id).record_overdue(due_at + timedelta(days=3))
