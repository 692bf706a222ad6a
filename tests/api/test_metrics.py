"""Issue #12.5: the gauges an operator alerts on (view lag, checkpoint age, oldest unanswered check per
issuer, failed key attempts), and a request id in every answer and access-log line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest

from api.gateway import access_line, access_time, request_id_of
from api.metrics import StoreGauges
from tests.api.conftest import Province


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


def samples(text: str, name: str) -> dict[str, float]:
    """Label text → value of every sample of ``name``."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{[^}}]*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_gauges_read_from_the_store(p: Province) -> None:
    check = p.raise_check()
    p.settle()
    text = p.client.get("/metrics").text
    assert samples(text, "nocert_store_up") == {"": 1.0}
    assert samples(text, "nocert_view_lag_events") == {"": 0.0}
    assert samples(text, "nocert_events_recorded")[""] >= p.position()
    oldest = samples(text, "nocert_oldest_unanswered_check_age_seconds")
    assert f'{{issuer="{check["issuer"]}"}}' in oldest and oldest[f'{{issuer="{check["issuer"]}"}}'] >= 0
    assert samples(text, "nocert_ledger_uncovered_leaves")[""] >= 0


def test_an_answered_check_leaves_the_issuer_gauge(p: Province) -> None:
    p.replied_check()
    p.settle()
    with p.services.database.reading() as cursor:
        waiting = {row[0] for row in cursor.execute("SELECT DISTINCT inbox_issuer FROM view_checks WHERE inbox_issuer IS NOT NULL").fetchall()}
    oldest = samples(p.client.get("/metrics").text, "nocert_oldest_unanswered_check_age_seconds")
    assert set(oldest) == {f'{{issuer="{issuer}"}}' for issuer in waiting}


def test_failed_key_attempts_are_counted(p: Province) -> None:
    before = samples(p.client.get("/metrics").text, "nocert_auth_failures_total").get("", 0.0)
    p.roaming("nck_fz-estate_0123456789abcdef_" + "s" * 43).get("/v1/checks", expect=401)
    p.anonymous.get("/v1/checks", expect=401)
    after = samples(p.client.get("/metrics").text, "nocert_auth_failures_total")[""]
    assert after == before + 2


class _Views:
    def lag(self) -> int:
        return 7

    def latest_checkpoint(self) -> dict[str, object]:
        return {"tree_size": 40, "issued_at": "2026-01-01T00:00:00Z"}

    def ledger_size(self) -> int:
        return 45

    def oldest_unanswered(self) -> dict[str, str]:
        return {"fz-gulou-police": "2025-12-31T22:00:00Z"}

    def newest_cosigned(self) -> tuple[int, str] | None:
        return 35, "2025-12-31T23:50:00Z"


class _Log:
    def max_position(self) -> int:
        return 52


def test_gauge_values() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    values = {metric.name: metric.samples for metric in StoreGauges(_Views(), _Log(), lambda: now).collect()}
    assert values["nocert_checkpoint_age_seconds"][0].value == 600
    assert values["nocert_ledger_uncovered_leaves"][0].value == 5
    assert values["nocert_view_lag_events"][0].value == 7
    assert values["nocert_events_recorded"][0].value == 52
    assert values["nocert_cosigned_checkpoint_tree_size"][0].value == 35
    assert values["nocert_cosigned_checkpoint_age_seconds"][0].value == 1200
    oldest = values["nocert_oldest_unanswered_check_age_seconds"][0]
    assert oldest.labels == {"issuer": "fz-gulou-police"} and oldest.value == 2 * 3600 + 600


def test_the_store_down_is_a_gauge_not_an_error() -> None:
    from store.database import DatabaseUnavailable

    class Down(_Views):
        def lag(self) -> int:
            raise DatabaseUnavailable("down")

    metrics = list(StoreGauges(Down(), _Log(), lambda: datetime.now(UTC)).collect())
    assert [(m.name, m.samples[0].value) for m in metrics] == [("nocert_store_up", 0)]


def test_every_answer_carries_a_request_id_that_the_access_line_names(p: Province, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nocert.access")
    caplog.clear()
    first = p.as_("approver").get("/v1/checks", expect=200)
    second = p.anonymous.get("/v1/checks", expect=401)
    given = p.client.get("/healthz", headers={"X-Request-Id": "nginx-0123456789abcdef"})
    hostile = p.client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    ids = [response.headers["x-request-id"] for response in (first, second, given, hostile)]
    assert ids[2] == "nginx-0123456789abcdef"
    assert len(set(ids)) == 4 and all(re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", value) for value in ids)
    entries = [json.loads(record.getMessage()) for record in caplog.records if record.name == "nocert.access"]
    assert [entry["request_id"] for entry in entries] == ids
    for entry in entries:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), entry["time"]
        assert entry["client"]  # the TestClient's address ("testclient")


def test_request_ids_and_times() -> None:
    assert request_id_of(None) != request_id_of(None)
    assert request_id_of("a" * 129) != "a" * 129 and request_id_of("short") != "short"
    assert access_time(1767225600.0456) == "2026-01-01T00:00:00.045Z"


def test_requests_are_tallied_and_show_up_in_the_counters_once_flushed() -> None:
    from api.metrics import Metrics

    metrics = Metrics()

    def counted() -> dict[str, float]:
        text = generate_latest(metrics.registry).decode()
        return {
            name: samples(text, name).get('{method="POST",route="/v1/checks",status="201"}', 0.0)
            for name in ("nocert_http_requests_total", "nocert_http_request_duration_seconds_count")
        }

    async def answer_three() -> dict[str, float]:  # on an event loop, as the gateway records
        for seconds in (0.001, 0.02, 30.0):
            metrics.record("POST", "/v1/checks", "201", seconds)
        return counted()

    assert asyncio.run(answer_three()) == {"nocert_http_requests_total": 0.0, "nocert_http_request_duration_seconds_count": 0.0}
    metrics.flush()
    text = generate_latest(metrics.registry).decode()
    assert counted() == {"nocert_http_requests_total": 3.0, "nocert_http_request_duration_seconds_count": 3.0}
    buckets = samples(text, "nocert_http_request_duration_seconds_bucket")
    labels = 'method="POST",route="/v1/checks",status="201"'
    assert buckets[f'{{le="0.002",{labels}}}'] == 1 and buckets[f'{{le="0.025",{labels}}}'] == 2
    assert buckets[f'{{le="10.0",{labels}}}'] == 2 and buckets[f'{{le="+Inf",{labels}}}'] == 3
    assert samples(text, "nocert_http_request_duration_seconds_sum")[f"{{{labels}}}"] == pytest.approx(30.021)
    metrics.flush()  # nothing counted twice
    assert counted()["nocert_http_requests_total"] == 3.0


def test_a_scrape_shows_this_process_requests_at_once(p: Province) -> None:
    def healthz_count() -> float:
        text = p.client.get("/metrics").text
        return samples(text, "nocert_http_requests_total").get('{method="GET",route="/healthz",status="200"}', 0.0)

    before = healthz_count()
    p.client.get("/healthz")
    p.client.get("/healthz")
    assert healthz_count() == before + 2


def test_the_access_line_is_the_json_of_its_fields() -> None:
    fields = ("10.0.0.1", "POST", "/v1/checks/{check_id}/reply", 201, 0.012345, "fz-gulou-police", "nginx-0123456789")
    line = access_line(*fields)
    entry = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.pop("time"))
    assert entry == {
        "client": "10.0.0.1", "method": "POST", "route": "/v1/checks/{check_id}/reply", "status": 201,
        "latency_ms": 12.35, "principal": "fz-gulou-police", "request_id": "nginx-0123456789",
    }
    assert line == json.dumps({"time": json.loads(line)["time"], **entry}, ensure_ascii=False)
    odd = access_line(None, "GET", '(unmatched) "\\ 路径\n', 404, 2.0, None, None)
    assert odd.endswith(', "route": "(unmatched) \\"\\\\ 路径\\n", "status": 404, "latency_ms": 2000.0, '
                        '"principal": null, "request_id": null}')
    assert json.loads(odd)["route"] == '(unmatched) "\\ 路径\n'
