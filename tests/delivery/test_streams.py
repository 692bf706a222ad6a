"""A dispatcher round's reads of checks (`delivery.streams`), on both stores: one query for all the round's
checks, each only after the version kept from the round before, the bodies the same as a fresh read's; and
what is kept between rounds holds nothing decrypted, so an erasure between two rounds leaves the later
deliveries erased exactly as ``GET /v1/checks/{id}?version=v`` shows the check."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import EventStore, StoredEvent

from api.cloudevents import Renderings
from delivery.outbox import Due
from delivery.streams import CheckStreams
from domain.check import Check
from privacy.mapper import SEALED
from tests.api.conftest import Province
from tests.bodies import APPLICANT

NAME = "林某某"
WHO = ("approver", "gulou")


class Counting:
    """The store's recorder, counting its reads of events."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.streams: list[list[tuple[UUID, int]]] = []
        self.single = 0

    def select_streams(self, after: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
        self.streams.append(list(after))
        found: list[StoredEvent] = self.recorder.select_streams(after)
        return found

    def select_events(self, *args: Any, **kwargs: Any) -> Any:
        self.single += 1
        return self.recorder.select_events(*args, **kwargs)


@pytest.fixture
def counting(province: Province) -> Counting:
    return Counting(province.services.platform.events.recorder)


def streams_of(province: Province, counting: Counting) -> CheckStreams:
    events = province.services.platform.events
    return CheckStreams(EventStore(events.mapper, counting), SEALED)  # type: ignore[arg-type]


def dues(province: Province, check_id: str, history: list[dict[str, Any]]) -> list[Due]:
    return [
        Due(f"s-{who}", province.members[who].id, "http://127.0.0.1/", "", event["position"], check_id, event["version"], 0, 0)
        for event in history
        for who in WHO
    ]


def history(province: Province, check_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = province.as_("approver").get(f"/v1/checks/{check_id}/history", expect=200).json()["events"]
    return events


def test_a_round_reads_its_checks_in_one_query_and_renders_as_a_fresh_read(province: Province, counting: Counting) -> None:
    ids = []
    for _ in range(3):
        check = province.raise_check()
        province.act(check["id"], "accept", "gulou")
        province.act(check["id"], "reply", "gulou")
        ids.append(check["id"])
    platform = province.services.platform
    streams = streams_of(province, counting)
    round_ = Renderings(platform, streams.read(ids))
    fresh = Renderings(platform)
    for check_id in ids:
        for due in dues(province, check_id, history(province, check_id)):
            assert round_.body(due) == fresh.body(due)
    assert len(counting.streams) == 1 and counting.streams[0] == [(UUID(i), 0) for i in ids]
    assert counting.single == 0


def test_the_next_round_reads_only_what_was_recorded_after_and_keeps_nothing_decrypted(
    province: Province, counting: Counting
) -> None:
    check = province.raise_check()
    province.act(check["id"], "accept", "gulou")
    province.act(check["id"], "reply", "gulou")
    platform = province.services.platform
    streams = streams_of(province, counting)
    first = Renderings(platform, streams.read([check["id"]]))
    for due in dues(province, check["id"], history(province, check["id"])):
        first.body(due)
    kept = streams.kept()[UUID(check["id"])]
    decoded = [entry for entry in kept if not isinstance(entry, StoredEvent)]
    assert [type(entry).__name__ for entry in decoded] == ["Accepted"]  # no personal field: kept decoded
    assert all(not isinstance(entry, Check.Raised | Check.Replied) for entry in kept)
    assert all(NAME.encode() not in entry.state and APPLICANT.encode() not in entry.state for entry in kept if isinstance(entry, StoredEvent))

    province.act(check["id"], "close", "approver")
    second = Renderings(platform, streams.read([check["id"]]))
    assert counting.streams[-1] == [(UUID(check["id"]), 3)]  # only the close is read
    assert counting.single == 0
    for due in dues(province, check["id"], history(province, check["id"])):
        assert second.body(due) == Renderings(platform).body(due)
    streams.read([])  # a round without the check: nothing of it is kept
    assert streams.kept() == {}


def test_an_erasure_between_two_rounds_erases_the_later_deliveries(province: Province) -> None:
    check = province.raise_check()
    province.act(check["id"], "accept", "gulou")
    province.act(check["id"], "reply", "gulou")
    platform = province.services.platform
    streams = CheckStreams(platform.events, SEALED)
    before = Renderings(platform, streams.read([check["id"]]))
    raised = dues(province, check["id"], history(province, check["id"]))[0]
    assert NAME in before.body(raised).decode()  # the round before: the applicant as GET shows them

    body = {"id_number": APPLICANT, "legal_basis": "PIPL art. 47: the person withdrew consent"}
    province.admin.post("/v1/subjects/erase", json=body, expect=200)
    after = Renderings(platform, streams.read([check["id"]]))
    events = history(province, check["id"])
    assert events[-1]["type"] == "SubjectErased"
    for due in dues(province, check["id"], events):
        delivered = after.body(due)
        assert NAME not in delivered.decode() and APPLICANT not in delivered.decode()
        who = next(w for w in WHO if province.members[w].id == due.department)
        shown = province.as_(who).get(f"/v1/checks/{check['id']}", params={"version": due.version}, expect=200).json()
        assert json.loads(delivered)["data"]["check"] == shown
