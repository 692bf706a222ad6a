"""The audit ledger (API.md §7): leaves recomputed from the event store, proofs, checkpoints."""

from __future__ import annotations

import base64
import os
import time
from datetime import timedelta
from typing import Any

import pytest

from domain.timefmt import utcnow
from signing import merkle
from signing.checkpoints import verify_checkpoint
from tests.domain.world import APPROVER, GULOU_POLICE, build_province, raise_check
from tests.projections import recount
from tests.projections.conftest import Clock


def some_history(app: Any, checks: int = 3) -> None:
    build_province(app)
    for _ in range(checks):
        check = raise_check(app)[0]
        app.accept(check.id, GULOU_POLICE)
        app.reply(check.id, GULOU_POLICE, "confirmed", {}, 90)
        app.close_check(check.id, APPROVER, "exempted")


def leaves(stack: Any) -> list[bytes]:
    return [recount.leaf_hash(n) for n in recount.notifications(stack.log)]


def audit_pages(views: Any, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = views.audit_events(after, limit)
        items.extend(page["items"])
        if page["next_after"] is None:
            assert len(page["items"]) < limit
            return items
        assert len(page["items"]) == limit and page["next_after"] == page["items"][-1]["position"]
        after = page["next_after"]


def test_leaves_and_audit_events_match_the_event_store(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, clock=Clock())
    some_history(stack.app)
    head = stack.sync()
    expected = recount.audit_items(stack.app, stack.log)
    assert len(expected) == head == stack.views.ledger_size()
    assert audit_pages(stack.views, 7) == expected
    assert audit_pages(stack.views, 1000) == expected
    assert stack.views.audit_events(head, 10) == {"items": [], "next_after": None}
    assert stack.views.audit_events(head - 2, 2)["next_after"] == head  # a full page, even the last
    for after, limit in ((-1, 10), (0, 0), (0, 1001)):
        with pytest.raises(ValueError):
            stack.views.audit_events(after, limit)


def test_encrypted_states_are_hashed_as_stored(sqlite_url: str, make_stack) -> None:
    stack = make_stack(sqlite_url, clock=Clock(), cipher_key=base64.b64encode(os.urandom(32)).decode())
    some_history(stack.app, checks=1)
    stack.sync()
    items = audit_pages(stack.views, 100)
    assert items == recount.audit_items(stack.app, stack.log)
    assert b"fz-housing" not in base64.b64decode(items[-1]["state_b64"])  # the stored bytes are ciphertext


def test_proofs_verify_for_every_size(durable_database_url: str, make_stack) -> None:
    stack = make_stack(durable_database_url, clock=Clock())
    some_history(stack.app, checks=2)
    size = stack.sync()
    hashes = leaves(stack)
    roots = {n: recount.merkle_root(hashes[:n]) for n in range(1, size + 1)}
    views = stack.views
    for tree_size in range(1, size + 1):
        for index in range(tree_size):
            proof = views.inclusion_proof(index, tree_size)
            assert proof["index"] == index and proof["tree_size"] == tree_size
            assert proof["leaf_hash"] == hashes[index].hex()
            path = [bytes.fromhex(node) for node in proof["path"]]
            assert merkle.verify_inclusion(index, tree_size, hashes[index], path, roots[tree_size])
        for first in range(1, tree_size + 1):
            proof = views.consistency_proof(first, tree_size)
            assert (proof["first"], proof["second"]) == (first, tree_size)
            path = [bytes.fromhex(node) for node in proof["path"]]
            assert merkle.verify_consistency(first, tree_size, roots[first], roots[tree_size], path)
            assert all(node == node.lower() and len(node) == 64 for node in proof["path"])

    for index, tree_size in ((0, 0), (0, size + 1), (size, size), (-1, size), (3, 2)):
        with pytest.raises(ValueError):
            views.inclusion_proof(index, tree_size)
    for first, second in ((0, 1), (2, 1), (1, size + 1), (0, 0)):
        with pytest.raises(ValueError):
            views.consistency_proof(first, second)


def verify(stack: Any, root_certificate: Any, hashes: list[bytes], checkpoint: dict[str, Any]) -> None:
    payload = verify_checkpoint(checkpoint["jws"], root_certificate)
    assert payload == {k: checkpoint[k] for k in ("tree_size", "root_hash", "issued_at")}
    assert checkpoint["root_hash"] == recount.merkle_root(hashes[: checkpoint["tree_size"]]).hex()


def all_checkpoints(views: Any, size: int) -> list[dict[str, Any]]:
    return [cp for n in range(1, size + 1) if (cp := views.checkpoint(n)) is not None]


def test_checkpoint_cadence(durable_database_url: str, make_stack, ledger_keys) -> None:
    clock = Clock()  # stands still: no leaf ever gets old enough for a checkpoint by time
    stack = make_stack(durable_database_url, checkpoint_every=5, clock=clock, batch_size=3)
    views = stack.views
    assert views.latest_checkpoint() is None
    some_history(stack.app, checks=2)
    size = stack.sync()
    hashes = leaves(stack)
    checkpoints = all_checkpoints(views, size)
    assert [cp["tree_size"] for cp in checkpoints] == list(range(5, size + 1, 5))
    for checkpoint in checkpoints:
        verify(stack, ledger_keys.root_certificate, hashes, checkpoint)
    assert views.latest_checkpoint() == checkpoints[-1]
    assert views.checkpoint(size + 5) is None

    # Leaves no checkpoint covers get one once they are older than a few seconds (10 s at most).
    if size % 5 == 0:
        stack.app.issue_api_key(APPROVER)
        size = stack.sync()
    clock.now = utcnow() + timedelta(seconds=6)
    deadline = time.monotonic() + 5
    while (views.latest_checkpoint() or {}).get("tree_size") != size:
        assert time.monotonic() < deadline, "no checkpoint for old uncovered leaves"
        time.sleep(0.05)
    hashes = leaves(stack)
    verify(stack, ledger_keys.root_certificate, hashes, views.latest_checkpoint())

    # The next one comes checkpoint_every leaves after it, not at the next multiple.
    clock.now = utcnow()  # new leaves are fresh again
    covered = size
    for _ in range(6):
        stack.app.issue_api_key(APPROVER)
    size = stack.sync()
    hashes = leaves(stack)
    later = [cp["tree_size"] for cp in all_checkpoints(views, size) if cp["tree_size"] > covered]
    assert later == [covered + 5]
    verify(stack, ledger_keys.root_certificate, hashes, views.checkpoint(covered + 5))


def test_a_follower_behind_at_every_wake_still_covers_old_leaves(durable_database_url: str, make_stack) -> None:
    """Under steady load the follower finds new events at every wake-up; leaves no checkpoint covers
    must still get one by time (API.md §7), not only once the load stops."""
    clock = Clock()
    stack = make_stack(durable_database_url, checkpoint_every=1000, clock=clock, start=False)
    views = stack.views
    lock = stack.database.leader_lock("views")
    try:
        some_history(stack.app, checks=1)
        assert views.follow_once(lock) > 0  # behind: applies what there is
        clock.now = utcnow() + timedelta(seconds=6)  # the first leaves are now old
        time.sleep(1.1)  # the next wake-up looks for uncovered leaves again
        stack.app.issue_api_key(APPROVER)  # and is behind again
        assert views.follow_once(lock) > 0
        assert (views.latest_checkpoint() or {}).get("tree_size") == views.ledger_size()
    finally:
        close = getattr(lock, "close", None)  # PostgreSQL's lock holds a connection of its own
        if close is not None:
            close()
