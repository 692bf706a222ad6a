"""Point-in-time reads of a long check: at every version and at every moment between two events, the check
is exactly its events up to then."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from domain.check_rules import TRANSITIONS
from domain.errors import DomainError
from projections.checks import check_document
from tests.audit.conftest import make_services
from tests.audit.scenario import APPROVER, CITY_POLICE, GULOU_POLICE, build_province, raise_check


@pytest.fixture
def long_check(durable_database_url: str, tmp_path: Path) -> Iterator[tuple]:
    services = make_services(durable_database_url, tmp_path / "keys")
    app = services.platform
    try:
        build_province(app)
        check_id = raise_check(app)
        app.accept(check_id, GULOU_POLICE)
        for round_ in range(3):
            app.request_info(check_id, GULOU_POLICE, f"第{round_ + 1}个问题")
            app.supply_info(check_id, APPROVER, f"第{round_ + 1}个回答")
        app.forward(check_id, GULOU_POLICE, CITY_POLICE, "户籍在市局")
        app.accept(check_id, CITY_POLICE)
        app.request_info(check_id, CITY_POLICE, "再确认一次")
        app.supply_info(check_id, APPROVER, "已确认")
        check, _ = app.reply(check_id, CITY_POLICE, "confirmed", {"same_person": True}, 90)
        app.close_check(check_id, APPROVER, "exempted")
        app.revoke_proof(check.proof.id, CITY_POLICE, "事后发现错误")
        yield services, check_id
    finally:
        services.close()


def replay(events):
    """The check from its events alone, with the aggregate's own mutate."""
    return functools.reduce(lambda check, event: event.mutate(check), events, None)


def test_every_version_is_its_events(long_check) -> None:
    services, check_id = long_check
    app = services.platform
    events = app.check_events(check_id)
    assert len(events) == 15
    now = events[-1].timestamp + timedelta(seconds=1)
    status = None
    for version in range(1, len(events) + 1):
        event = events[version - 1]
        name = type(event).__name__
        status = "raised" if name == "Raised" else (TRANSITIONS[name][2] or status)
        past = app.check(check_id, version=version)
        assert past.version == version
        assert past.status == status
        assert check_document(past, now) == check_document(replay(events[:version]), now)
    with pytest.raises(DomainError):
        app.check(check_id, version=len(events) + 1)
    final = app.check(check_id)
    assert final.status == "closed" and final.proof.status == "revoked"
    assert [item["answer"] for item in check_document(final, now)["info_requests"]] == ["第1个回答", "第2个回答", "第3个回答", "已确认"]
    assert final.forwarded_from == [GULOU_POLICE]


def test_as_of_every_moment_between_events(long_check) -> None:
    services, check_id = long_check
    app = services.platform
    events = app.check_events(check_id)
    with pytest.raises(DomainError):
        app.check_as_of(check_id, events[0].timestamp - timedelta(microseconds=1))
    for version, event in enumerate(events, start=1):
        following = events[version].timestamp if version < len(events) else event.timestamp + timedelta(days=1)
        assert following > event.timestamp
        moments = [event.timestamp, event.timestamp + (following - event.timestamp) / 2, following - timedelta(microseconds=1)]
        for moment in moments:
            past = app.check_as_of(check_id, moment)
            assert past.version == version, (version, moment)
            assert check_document(past, moment) == check_document(replay(events[:version]), moment)


def test_history_positions_are_the_ledger_order(long_check) -> None:
    """Each version's global position, as the history shows it, is increasing with the version."""
    services, check_id = long_check
    positions = services.log.stream_positions(check_id)
    assert sorted(positions) == list(range(1, 16))
    ordered = [positions[version] for version in sorted(positions)]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)
