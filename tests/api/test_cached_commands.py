"""Check commands act on the check this process cached, with no read, and decide again on a fresh read when
that copy turns out stale: two nodes on one store (both stores), each command of a lifecycle sent to the
node that did not record the last one, all answered 200 and each recorded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from tests.api.conftest import Province, open_province, running_app


@pytest.fixture
def nodes(durable_database_url: str, tmp_path: Path) -> Iterator[tuple[Province, Province]]:
    with open_province(durable_database_url, tmp_path / "keys") as first:
        with running_app(durable_database_url, tmp_path / "keys") as (services, app, client):
            second = Province(client, services, dict(first.members), app)
            yield first, second


def event_types(province: Province, check_id: str) -> list[str]:
    return [type(event).__name__ for event in province.services.platform.check_events(UUID(check_id))]


def test_a_lifecycle_alternating_between_two_nodes_acts_on_fresh_state(nodes: tuple[Province, Province]) -> None:
    a, b = nodes
    check = a.raise_check()
    check_id = check["id"]
    assert a.services.platform.cached_check(UUID(check_id)) is not None
    b.act(check_id, "accept", "gulou")  # b reads it (not cached there)
    b.act(check_id, "request-info", "gulou")  # b: cached, current
    # a still caches the check as raised: its first attempt is refused, the fresh one is recorded.
    a.act(check_id, "supply-info", "approver")
    b.act(check_id, "reply", "gulou")  # b's copy is stale too (supply-info was recorded by a)
    closed = a.act(check_id, "close", "approver")
    assert closed["status"] == "closed"
    assert event_types(a, check_id) == ["Raised", "Accepted", "InfoRequested", "InfoSupplied", "Replied", "Closed"]


def test_a_check_forwarded_on_another_node_is_found_by_its_new_issuer(nodes: tuple[Province, Province]) -> None:
    a, b = nodes
    check_id = a.raise_check()["id"]
    a.act(check_id, "accept", "gulou")
    b.act(check_id, "forward", "gulou", {"to": "fz-police", "reason": "辖区调整"})
    # a's cached copy still names gulou as the issuer: the city police are not refused with a 404 for it.
    accepted = a.act(check_id, "accept", "city")
    assert accepted["status"] == "accepted"
    # and gulou, no longer the issuer, is refused on a's fresh read although a's cache once said otherwise.
    a.act(check_id, "request-info", "gulou", expect=403)
    assert event_types(b, check_id) == ["Raised", "Accepted", "Forwarded", "Accepted"]
