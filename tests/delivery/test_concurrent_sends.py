"""Concurrent sends within a subscription (API.md §11, `delivery.dispatcher`), on both stores: deliveries to
different checks go out at the same time, but never two of one check at once and never a later event of a
check before an earlier one, even when the receiver is slow for some checks; one department's
subscriptions share the rendering of an event (`api.cloudevents.Renderings`)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from api import cloudevents
from api.bootstrap import build_dispatcher
from tests.api.conftest import Province
from tests.delivery.conftest import feed_of, story, subscribe
from tests.delivery.receiver import Attempt, Receiver


def subject(body: bytes) -> str:
    return str(json.loads(body)["subject"])


def by_check(attempts: list[Attempt]) -> dict[str, list[Attempt]]:
    grouped: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        grouped[subject(attempt.body)].append(attempt)
    return grouped


def test_checks_go_out_concurrently_each_in_order_when_the_receiver_is_slow_for_some(
    province: Province, receiver: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_checks: set[str] = set()
    hooks = [receiver(slow=lambda body: 0.4 if subject(body) in slow_checks else 0.0) for _ in range(2)]
    for hook in hooks:  # two subscriptions of the same department
        subscribe(province, "approver", hook.url)
    province.services.webhooks.stop()  # the events wait in the outbox: the next dispatcher finds them all due
    checks = [story(province) for _ in range(3)]
    slow_checks.add(checks[0])
    services = province.services
    dispatcher = build_dispatcher(services.settings, services.platform, services.database, services.webhook_keys)
    rendered: list[tuple[str, int]] = []
    made = cloudevents.check_document

    def counting(check: Any, principal: Any, now: Any, current: Any = None) -> dict[str, Any]:
        rendered.append((str(check.id), check.version))
        return made(check, principal, now, current)

    monkeypatch.setattr(cloudevents, "check_document", counting)  # each call: one rendering of a view
    try:
        dispatcher.drain_all()
    finally:
        dispatcher.stop()
    monkeypatch.undo()  # the feed read below renders too

    events = {item["id"]: item["data"]["position"] for item in feed_of(province, "approver")}
    assert len(events) == 15
    for hook in hooks:
        assert sorted(hook.delivered_ids()) == sorted(events), hook.log()  # every event once, nothing lost
        for check_id, attempts in by_check(hook.attempts).items():
            positions = [events[a.webhook_id] for a in sorted(attempts, key=lambda a: a.at)]
            assert positions == sorted(positions), f"check {check_id} out of order:\n{hook.log()}"
            for a, b in zip(attempts, attempts[1:], strict=False):  # one at a time: each answered before the next
                assert a.ended <= b.at, f"check {check_id}: two in flight:\n{hook.log()}"
        # the fast checks went out while the slow check's first delivery was in flight
        slow_first = min(by_check(hook.attempts)[checks[0]], key=lambda a: a.at)
        fast = [a for check in checks[1:] for a in by_check(hook.attempts)[check]]
        assert any(slow_first.at < a.at < slow_first.ended for a in fast), hook.log()
    # one rendering per view and round: at least the first round's 3 heads were shared
    assert len(rendered) <= 30 - 3, rendered
    assert len(set(rendered)) == 15  # every version of the 3 checks
