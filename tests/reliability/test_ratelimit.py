"""Brute force: failed authentications are limited per client address (api.ratelimit), valid keys never.

The limiter alone (a fake clock): the allowance, the sliding window, Retry-After, bounded memory and
IPv6 /64 grouping. Through the gateway (in-process ASGI): the (FAILURE_LIMIT+1)-th failure within a minute from one
address is 429 ``too_many_requests`` (problem+json, Retry-After), a valid key from that same address
still succeeds meanwhile, a missing key is still 401, and another address is not affected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import FAILURE_LIMIT, AuthFailureLimiter, client_key
from tests.reliability.support import Province, open_services


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allowance_then_limited_then_the_window_slides() -> None:
    clock = Clock()
    limiter = AuthFailureLimiter(limit=3, window=60, clock=clock)
    assert [limiter.record_failure("10.0.0.1") for _ in range(3)] == [0, 0, 0]
    wait = limiter.record_failure("10.0.0.1")
    assert wait == pytest.approx(60)
    assert limiter.retry_after_header(wait) == "60"
    clock.now += 30
    assert limiter.record_failure("10.0.0.1") == pytest.approx(30)  # still limited; the oldest two count
    clock.now += 30.5  # the failures at t=0 have aged out; only the one at t=30 s remains
    assert limiter.record_failure("10.0.0.1") == 0
    assert limiter.record_failure("10.0.0.2") == 0, "another address has its own allowance"


def test_blocked_for_refuses_once_the_allowance_is_spent_and_records_nothing() -> None:
    clock = Clock()
    limiter = AuthFailureLimiter(limit=3, window=60, clock=clock)
    for seconds in (0, 10, 20):
        clock.now = 1000.0 + seconds
        assert limiter.blocked_for("10.0.0.1") == 0  # within its allowance: the attempt is checked
        limiter.record_failure("10.0.0.1")
    assert limiter.blocked_for("10.0.0.1") == pytest.approx(40)  # until the failure at t=0 is a minute old
    assert limiter.blocked_for("10.0.0.1") == pytest.approx(40)  # asking counts nothing
    assert limiter.blocked_for("10.0.0.2") == 0
    clock.now = 1060.5
    assert limiter.blocked_for("10.0.0.1") == 0


def test_memory_is_bounded() -> None:
    limiter = AuthFailureLimiter(limit=2, window=60, max_addresses=100, clock=Clock())
    for n in range(10_000):
        limiter.record_failure(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(limiter) == 100


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert client_key(None) == "unknown"
    limiter = AuthFailureLimiter(limit=1, window=60, clock=Clock())
    assert limiter.record_failure("2001:db8::1") == 0
    assert limiter.record_failure("2001:db8::2") > 0


@pytest.fixture
def app_and_province(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[object, Province]]:
    services = open_services(sqlite_url, tmp_path / "keys")
    try:
        app = create_app(services)
        with TestClient(app) as client:
            yield app, Province.create(client)
    finally:
        services.close()


def test_failed_keys_from_one_address_get_429_but_valid_keys_still_pass(
    app_and_province: tuple[object, Province], caplog: pytest.LogCaptureFixture
) -> None:
    app, province = app_and_province
    attacker = TestClient(app, client=("198.51.100.7", 40000))
    neighbour = TestClient(app, client=("198.51.100.8", 40000))
    guess = {"Authorization": "Bearer nck_fz-estate_0123456789abcdef_" + "A" * 43}

    statuses = [attacker.get("/v1/inbox", headers=guess).status_code for _ in range(FAILURE_LIMIT)]
    assert statuses == [401] * FAILURE_LIMIT
    with caplog.at_level(logging.WARNING, logger="nocert.ratelimit"):
        limited = attacker.get("/v1/checks", headers=guess)
        again = attacker.post("/v1/checks", json={}, headers=guess)
    assert limited.status_code == 429 and again.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    problem = limited.json()
    assert problem["code"] == "too_many_requests" and problem["status"] == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-content-type-options"] == "nosniff"
    assert sum("198.51.100.7" in record.getMessage() for record in caplog.records) == 1, "one warning per episode"
    assert guess["Authorization"][7:] not in caplog.text

    # While the address is limited, a valid key from it still works, and a missing key is still 401.
    ok = attacker.get("/v1/checks", headers=province.headers("approver"))
    assert ok.status_code == 200, ok.text
    assert attacker.get("/v1/checks").status_code == 401
    # Another address is not affected.
    assert neighbour.get("/v1/inbox", headers=guess).status_code == 401
    failures = [line for line in attacker.get("/metrics").text.splitlines() if line.startswith("nocert_auth_failures_total")]
    assert failures and float(failures[0].split()[-1]) >= FAILURE_LIMIT + 2
