"""The PostgreSQL recorder's time bounds (store.recorder), without a database: quick failures are
retried, a slow one opens the breaker, calls then fail at once but for one probe at a time, and the first
successful probe closes it. (test_outage.py proves the same against a real PostgreSQL stopped under load.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from store import recorder as recorder_module
from store.recorder import Breaker, bounded


class FakeRecorder:
    """Runs ``script`` steps in order: each is a number of seconds to take and whether to fail."""

    def __init__(self, steps: list[tuple[float, bool]], probe_interval: float = 0.2) -> None:
        self.steps = list(steps)
        self.breaker = Breaker(probe_interval)
        self.calls = 0

    def _call(self) -> str:
        self.calls += 1
        seconds, fail = self.steps.pop(0) if self.steps else (0.0, False)
        time.sleep(seconds)
        if fail:
            raise OperationalError("couldn't get a connection")
        return "ok"

    call: Callable[..., Any] = bounded(_call)


@pytest.fixture(autouse=True)
def fast_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "QUICK_FAILURE_SECONDS", 0.1)
    monkeypatch.setattr(recorder_module, "RETRY_BUDGET_SECONDS", 0.5)
    monkeypatch.setattr(recorder_module, "RETRY_WAIT_SECONDS", 0.01)


def test_quick_failures_are_retried_within_the_budget() -> None:
    recorder = FakeRecorder([(0.0, True), (0.0, True), (0.0, False)])
    assert recorder.call() == "ok"
    assert recorder.calls == 3
    assert not recorder.breaker.is_open


def test_quick_failures_stop_at_the_budget() -> None:
    recorder = FakeRecorder([(0.0, True)] * 1000)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        recorder.call()
    assert time.monotonic() - started < 2.0
    assert not recorder.breaker.is_open  # quick failures are not an unreachable database


def test_a_slow_failure_opens_the_breaker_then_one_probe_at_a_time_closes_it() -> None:
    recorder = FakeRecorder([(0.15, True)], probe_interval=0.2)
    with pytest.raises(OperationalError):
        recorder.call()
    assert recorder.calls == 1 and recorder.breaker.is_open
    started = time.monotonic()
    with pytest.raises(OperationalError, match="failing fast"):
        recorder.call()  # within the probe interval: no database call at all
    assert recorder.calls == 1 and time.monotonic() - started < 0.05

    time.sleep(0.25)
    recorder.steps = [(0.3, False)]  # the probe, slow but successful: others fail fast meanwhile
    results: list[str] = []
    probe = threading.Thread(target=lambda: results.append(recorder.call()))
    probe.start()
    time.sleep(0.05)
    with pytest.raises(OperationalError, match="failing fast"):
        recorder.call()
    probe.join()
    assert results == ["ok"] and not recorder.breaker.is_open
    assert recorder.call() == "ok"
