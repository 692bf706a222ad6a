"""Escalation over HTTP (API.md §13) on both stores: POST /v1/checks/{id}/urge, the Overdue timer (with its
own clock, ticked by hand), the check document's ``overdue_since`` and ``urged``, history, inbox order,
coverage, the audit's machine, and one timer at a time across processes."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from api.trust import PlatformTrust
from audit.verify import verify_ledger
from domain.timefmt import utcnow
from escalation.timer import LOCK, OverdueTimer
from tests.api.conftest import Province


def timer_at(province: Province, **ahead: float) -> OverdueTimer:
    services = province.services
    moment = utcnow() + timedelta(**ahead)
    return OverdueTimer(services.platform, services.views, services.database, clock=lambda: moment)


def test_urge(province: Province) -> None:
    check = province.raise_check()
    urged = province.act(check["id"], "urge", "approver", {"note": "请尽快回复"})
    assert urged["urged"] == 1 and urged["status"] == "raised" and urged["overdue_since"] is None
    province.act(check["id"], "accept", "gulou")
    assert province.act(check["id"], "urge", "approver", {"note": "再催"})["urged"] == 2
    shown = province.as_("gulou").get(f"/v1/checks/{check['id']}", expect=200).json()
    assert shown["urged"] == 2
    history = province.as_("gulou").get(f"/v1/checks/{check['id']}/history", expect=200).json()["events"]
    urges = [event for event in history if event["type"] == "Urged"]
    feed = province.as_("gulou").get("/v1/feed", params={"limit": 1000}, expect=200).json()["items"]
    assert [item["data"]["check"]["urged"] for item in feed if item["data"]["type"] == "Urged"] == [1, 2]
    assert [event["data"]["note"] for event in urges] == ["请尽快回复", "再催"]
    assert {event["actor"] for event in urges} == {province.approver.id}


def test_urge_refusals_change_nothing(province: Province) -> None:
    check = province.raise_check()
    path = f"/v1/checks/{check['id']}/urge"
    assert province.as_("gulou").post(path, json={"note": "x"}, expect=403).json()["code"] == "forbidden"
    assert province.as_("stranger").post(path, json={"note": "x"}, expect=404).json()["code"] == "not_found"
    assert province.as_("approver").post(path, json={}, expect=422).json()["code"] == "validation_error"
    assert province.as_("approver").post(path, json={"note": "x" * 2001}, expect=422).json()["code"] == "validation_error"
    province.act(check["id"], "reply", "gulou")
    assert province.as_("approver").post(path, json={"note": "x"}, expect=409).json()["code"] == "invalid_transition"
    assert province.as_("approver").get(f"/v1/checks/{check['id']}", expect=200).json()["urged"] == 0


def test_the_timer_records_overdue_once_and_keeps_the_views_meaning(province: Province) -> None:
    late = province.raise_check()
    province.act(late["id"], "accept", "gulou")
    answered = province.replied_check()
    province.settle()
    coverage_before = province.as_("auditor").get("/v1/coverage", expect=200).json()
    assert timer_at(province, hours=1).tick() == 0  # nothing is due yet
    timer = timer_at(province, hours=25)
    assert timer.tick() == 1
    assert timer.tick() == 0  # once per due time
    assert timer_at(province, hours=30).tick() == 0  # a new timer (a restart): still once
    province.settle()
    shown = province.as_("approver").get(f"/v1/checks/{late['id']}", expect=200).json()
    assert shown["status"] == "accepted" and shown["overdue_since"] is not None
    events = province.as_("approver").get(f"/v1/checks/{late['id']}/history", expect=200).json()["events"]
    overdue = events[-1]
    assert overdue["type"] == "Overdue" and overdue["actor"] == "platform"
    assert overdue["data"]["due_at"] == late["due_at"] and overdue["at"] == shown["overdue_since"]
    answered_history = province.as_("approver").get(f"/v1/checks/{answered['id']}/history", expect=200).json()
    assert "Overdue" not in [event["type"] for event in answered_history["events"]]
    inbox = province.as_("gulou").get("/v1/inbox", expect=200).json()["items"]
    assert [item["id"] for item in inbox] == [late["id"]] and inbox[0]["overdue_since"] == shown["overdue_since"]
    coverage_after = province.as_("auditor").get("/v1/coverage", expect=200).json()
    assert coverage_after["totals"] == coverage_before["totals"]
    for who in ("approver", "gulou"):  # both parties are told (§13: history, feed and webhooks)
        feed = province.as_(who).get("/v1/feed", params={"limit": 1000}, expect=200).json()["items"]
        told = [item for item in feed if item["subject"] == late["id"] and item["data"]["type"] == "Overdue"]
        assert len(told) == 1 and told[0]["data"]["check"]["overdue_since"] == shown["overdue_since"]


def test_a_forwarded_check_can_be_overdue_again(province: Province) -> None:
    check = province.raise_check()
    province.settle()  # the timer finds its candidates in the checks view
    assert timer_at(province, hours=25).tick() == 1
    forwarded = province.act(check["id"], "forward", "gulou")
    assert forwarded["overdue_since"] is None and forwarded["due_at"] > check["due_at"]
    province.settle()
    assert timer_at(province, hours=23).tick() == 0  # the new due time is 24 h after the forward
    assert timer_at(province, hours=25).tick() == 1
    events = province.as_("approver").get(f"/v1/checks/{check['id']}/history", expect=200).json()["events"]
    assert [event["type"] for event in events].count("Overdue") == 2


def test_one_timer_at_a_time(province: Province) -> None:
    province.raise_check()
    province.settle()
    holder = province.services.database.leader_lock(LOCK)  # another process's timer, mid-tick
    assert holder.try_acquire()
    try:
        assert timer_at(province, hours=25).tick() == 0
    finally:
        holder.close()
    assert timer_at(province, hours=25).tick() == 1


def test_the_audit_accepts_overdue_and_urged(province: Province) -> None:
    check = province.raise_check()
    province.act(check["id"], "urge", "approver", {"note": "请尽快回复"})
    province.settle()
    assert timer_at(province, hours=25).tick() == 1
    province.act(check["id"], "reply", "gulou")
    province.act(check["id"], "close", "approver")
    province.settle()
    services = province.services
    kinds = [type(event).__name__ for event in services.platform.check_events(UUID(check["id"]))]
    assert "Overdue" in kinds and "Urged" in kinds
    report = verify_ledger(
        services.platform, services.database, services.log, services.keystore.root()[1],
        trust=PlatformTrust(services.platform), workers=1,
    )
    assert report.ok, report.to_dict()


def test_an_urge_records_the_officer_the_approver_names(province: Province) -> None:
    """API.md §12: every event a command records carries the officer of X-Officer; urge included."""
    province.admin.post(
        f"/v1/departments/{province.approver.id}/officers", json={"login": "li.na", "name": "李娜"}, expect=201
    )
    check = province.raise_check()
    clerk = province.as_("approver")
    before = province.position()
    refused = clerk.post(f"/v1/checks/{check['id']}/urge", json={"note": "催办"}, headers={"X-Officer": "nobody"}, expect=422)
    assert refused.json()["code"] == "invalid_officer" and province.position() == before
    clerk.post(f"/v1/checks/{check['id']}/urge", json={"note": "催办"}, headers={"X-Officer": "li.na"}, expect=200)
    history = clerk.get(f"/v1/checks/{check['id']}/history", expect=200).json()["events"]
    assert [(e["type"], e["officer"]) for e in history] == [("Raised", None), ("Urged", "li.na")]
