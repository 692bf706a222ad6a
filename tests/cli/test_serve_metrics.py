"""Issue #12.5: ``nocert serve`` with two workers answers every scrape of /metrics with the same counters
(prometheus-client's multiprocess mode in a directory it empties on every start), and logs one access line
per request with a millisecond time, the client address and the request id it returns."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.api.test_metrics import samples
from tests.reliability.support import Server, server_env


class TwoWorkers(Server):
    def start(self, timeout: float = 90.0) -> None:
        import subprocess

        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                [self.nocert, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"],
                env=self.env, cwd=self.workdir, stdout=out, stderr=err, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.logs()[-3000:]
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(self.logs()[-3000:])

    @property
    def nocert(self) -> str:
        from tests.reliability.support import NOCERT

        return NOCERT


def test_metrics_are_the_same_whichever_worker_answers(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"left from an earlier run")
    env = server_env(f"sqlite:///{tmp_path}/nocert.db", tmp_path / "keys", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    server = TwoWorkers(tmp_path / "run", env)
    server.start()
    try:
        assert not (metrics_dir / "counter_99999.db").exists()
        for index in range(40):  # a new connection each: the kernel spreads them over both workers
            response = httpx.get(f"{server.base_url}/healthz", headers={"X-Request-Id": f"probe-{index:04d}"})
            assert response.status_code == 200 and response.headers["x-request-id"] == f"probe-{index:04d}"
        for _ in range(3):
            httpx.get(f"{server.base_url}/v1/checks", headers={"Authorization": "Bearer nck_wrong"})
        # Each worker adds its requests to the shared files at most api.metrics.FLUSH_SECONDS later.
        deadline = time.monotonic() + 30
        while healthz_count(httpx.get(f"{server.base_url}/metrics").text) != 40.0 and time.monotonic() < deadline:
            time.sleep(0.05)
        healthz = set()
        failures = set()
        for _ in range(12):
            text = httpx.get(f"{server.base_url}/metrics").text
            healthz.add(healthz_count(text))
            failures.add(samples(text, "nocert_auth_failures_total").get(""))
        assert healthz == {40.0} and failures == {3.0}
        workers = {re.sub(r"\D", "", path.name) for path in metrics_dir.glob("counter_*.db")}
        assert len(workers) == 2, f"each worker keeps its own files: {workers}"
        for index in range(40, 50):  # not scraped before the stop: the workers flush them as they stop
            httpx.get(f"{server.base_url}/healthz", headers={"X-Request-Id": f"probe-{index:04d}"})
    finally:
        server.stop()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    assert healthz_count(generate_latest(registry).decode()) == 50.0
    lines = [json.loads(line) for line in server.stdout_path.read_text().splitlines() if line.startswith("{")]
    probes = [line for line in lines if str(line.get("request_id", "")).startswith("probe-")]
    assert len(probes) == 50
    for line in probes:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]) and line["client"] == "127.0.0.1"
    assert {line["request_id"] for line in probes} == {f"probe-{index:04d}" for index in range(50)}


def healthz_count(text: str) -> float | None:
    return samples(text, "nocert_http_requests_total").get('{method="GET",route="/healthz",status="200"}')
