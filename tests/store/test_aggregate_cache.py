"""The per-process aggregate cache (`domain.repository`), on both stores: copy on write, a refused command
leaves nothing behind, two processes on one store never act on a stale copy, and several streams are
read afresh in one query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from api.settings import parse_database_url, store_env
from domain.check import Check
from domain.department import Department
from domain.errors import ConcurrentUpdate
from domain.platform import Platform
from tests.domain.fakes import FakeClaims, FakeSealer
from tests.domain.world import APPROVER, GULOU_POLICE, HOUSEHOLD, build_province, new_check_id, raise_check


def open_platform(url: str) -> Platform:
    return Platform(store_env(parse_database_url(url), pool_size=4), sealer=FakeSealer(), claims=FakeClaims())


@pytest.fixture
def two(durable_database_url: str) -> Iterator[tuple[Platform, Platform]]:
    """Two applications on one store, each with its own cache: two processes of nocert."""
    first = open_platform(durable_database_url)
    build_province(first)
    second = open_platform(durable_database_url)
    yield first, second
    first.close()
    second.close()


class Reads:
    """Counts the recorder's reads of events (one call: one query)."""

    def __init__(self, app: Platform) -> None:
        self.calls: list[str] = []
        recorder: Any = app.recorder
        for name in ("select_events", "select_streams"):
            original = getattr(recorder, name)
            setattr(recorder, name, self._counting(name, original))

    def _counting(self, name: str, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return original(*args, **kwargs)

        return call


def test_the_cache_hands_out_copies_and_never_keeps_a_failed_commands_changes(two: tuple[Platform, Platform]) -> None:
    app, _ = two
    check_id = new_check_id(app)
    first = app.cached_check(check_id)
    assert first is not None, "a saved check is cached"
    first.accept(GULOU_POLICE)  # changed, never saved: the command failed after this, say
    again = app.cached_check(check_id)
    assert again is not None and again is not first
    assert again.version == 1 and again.status == "raised" and not again.pending_events
    assert app.check(check_id).status == "raised"


def test_a_command_refused_as_concurrent_update_does_not_poison_the_cache(two: tuple[Platform, Platform]) -> None:
    here, there = two
    check_id = new_check_id(here)
    stale = here.cached_check(check_id)
    there.accept(check_id, GULOU_POLICE)  # another process moves the check on
    assert stale is not None
    with pytest.raises(ConcurrentUpdate):
        here.accept(stale, GULOU_POLICE)  # acting on the stale copy: the save is refused
    assert here.cached_check(check_id) is None, "the refused aggregate is dropped from the cache"
    fresh = here.check(check_id)
    assert fresh.version == 2 and fresh.status == "accepted"
    assert [type(event).__name__ for event in here.check_events(check_id)] == ["Raised", "Accepted"]
    fresh.request_info(GULOU_POLICE, "请补充")  # the fresh read is current: the next command is recorded
    assert here._save(fresh) > 0


def test_two_processes_never_act_on_a_stale_copy(two: tuple[Platform, Platform]) -> None:
    here, there = two
    check_id = new_check_id(here)
    assert here.cached_check(check_id) is not None and there.cached_check(check_id) is None
    there.accept(check_id, GULOU_POLICE)
    # A fresh read fast-forwards the cached copy over the other process's event.
    assert here.check(check_id).status == "accepted"
    cached = here.cached_check(check_id)
    assert cached is not None and cached.version == 2, "the fast-forwarded copy replaced the entry"
    # Every save of a stale copy is refused, whichever process holds it.
    stale_there = there.cached_check(check_id)
    here.request_info(check_id, GULOU_POLICE, "请补充")
    assert stale_there is not None
    with pytest.raises(ConcurrentUpdate):
        there.request_info(stale_there, GULOU_POLICE, "请再补充")
    assert [type(event).__name__ for event in there.check_events(check_id)] == ["Raised", "Accepted", "InfoRequested"]


def test_several_streams_are_read_afresh_in_one_query(two: tuple[Platform, Platform]) -> None:
    app, other = two
    reads = Reads(app)
    streams = [Department.stream_id(APPROVER), Department.stream_id(GULOU_POLICE), Check.stream_id(APPROVER, "none")]
    found = app._read(*streams)
    assert reads.calls == ["select_streams"], "three streams, one query"
    assert set(found) == set(streams[:2]), "a stream with no events is simply absent"
    other.issue_api_key(GULOU_POLICE)  # moves one of them on, elsewhere
    again = app._read(*streams)
    assert reads.calls == ["select_streams"] * 2
    assert again[streams[1]].version == found[streams[1]].version + 1


def test_a_lifecycle_reads_the_check_from_the_cache(two: tuple[Platform, Platform]) -> None:
    app, _ = two
    check_id = new_check_id(app, category=HOUSEHOLD)
    reads = Reads(app)
    for command in (lambda c: app.accept(c, GULOU_POLICE), lambda c: app.request_info(c, GULOU_POLICE, "请补充")):
        cached: UUID | Check | None = app.cached_check(check_id)
        assert cached is not None
        command(cached)
    assert reads.calls == [], "commands on a cached check make no read"


def test_a_saved_aggregate_is_cached_as_is_and_copied_before_a_command_changes_it(two: tuple[Platform, Platform]) -> None:
    app, _ = two
    check, _ = raise_check(app)
    assert app.caching.aggregates.holds(check), "the saved check is the entry (no copy at saving)"

    def failing(aggregates: Any, events: Any) -> list[Any]:
        raise RuntimeError("the save failed")

    app.save_hooks.append(failing)
    with pytest.raises(RuntimeError):
        app.accept(check, GULOU_POLICE)  # changes a copy of the entry, whose save then fails
    app.save_hooks.clear()
    assert check.status == "raised" and check.version == 1 and not check.pending_events
    assert app.check(check.id).status == "raised"
    assert app.accept(check, GULOU_POLICE)[0].status == "accepted"
