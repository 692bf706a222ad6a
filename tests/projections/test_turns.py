"""Followers of several processes take turns (one leader lock, let go once caught up): what the other one
projected in between is fast-forwarded onto each projector's cached aggregates, and the views stay exact."""

from __future__ import annotations

from typing import Any

from tests.domain.world import APPROVER, GULOU_POLICE, build_province, raise_check
from tests.projections import recount
from tests.projections.conftest import Clock
from tests.projections.test_follower import assert_views_match_the_log


def test_followers_taking_turns_fast_forward_what_the_other_projected(durable_database_url: str, make_stack) -> None:
    """Each follower's projector holds the aggregates it projected; events another process projected in
    between are read and applied onto them (not the whole stream again), and the views stay exact."""
    one = make_stack(durable_database_url, batch_size=5, clock=Clock(), start=False)
    two = make_stack(durable_database_url, batch_size=5, clock=Clock(), start=False)
    build_province(one.app)
    whole_reads: dict[str, list[int]] = {"one": [], "two": []}
    locks = {}
    for name, stack in (("one", one), ("two", two)):
        locks[name] = stack.database.leader_lock("views")
        original = stack.app.repository.get

        def counted(
            aggregate_id: Any, *, version: int | None = None, _original: Any = original, _name: str = name, **kw: Any
        ) -> Any:
            if version is not None:  # only the projector reads a version (commands read the latest)
                whole_reads[_name].append(version)
            return _original(aggregate_id, version=version, **kw)

        stack.app.repository.get = counted

    def follow(name: str, stack: Any) -> None:
        stack.views.follow_once(locks[name])
        assert stack.views.position() == stack.head()

    check = raise_check(one.app, issuer=GULOU_POLICE)[0]
    follow("one", one)
    one.app.accept(check.id, GULOU_POLICE)
    follow("two", two)  # never saw the check: reads it whole, up to the raise
    assert whole_reads == {"one": [], "two": [1]}
    one.app.reply(check.id, GULOU_POLICE, "confirmed", {}, 90)
    follow("one", one)  # holds the check at its raise: the accept is read and applied, not the stream whole
    one.app.close_check(check.id, APPROVER, "exempted")
    follow("two", two)  # holds it at its accept: the reply likewise
    assert whole_reads == {"one": [], "two": [1]}
    assert_views_match_the_log(one)
    assert recount.dump(one.database) == recount.dump(two.database)
