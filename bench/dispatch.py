"""The webhook dispatcher's CPU per delivery (issue 15), against a floor measured in the same run.

For each store (PostgreSQL by default; ``--store sqlite`` or ``both``) and each of ``--rounds`` repetitions:
a fresh store and services in this process (no dispatcher, views or timers running), 4 subscriptions (2 of
the approver, 2 of the issuer) to ``bench.receiver`` (a process of its own: its CPU is not counted), then
K lifecycles (raise → accept → reply → close) through the API, which leave 16 K deliveries in the outbox.
Then the dispatcher drains them (`Dispatcher.drain_all`: rounds, rendering, signing, POSTs, recording)
and the process CPU time it took (every thread of this process; the receiver's and PostgreSQL's are in
theirs) is divided by the deliveries the receiver saw.

The floor, in the same run: one thread signing (Ed25519) and POSTing (`http.client`, one kept-alive
connection) a body of the same size to the same receiver as many times: what a delivery cannot cost less
than. The ratio (dispatcher CPU per delivery / floor CPU per delivery) is the figure to compare.

``--profile DIR`` samples this process with py-spy while the dispatcher drains (``DIR/dispatch-<store><run>.raw``,
raw collapsed stacks for `bench.hotspots`, and ``--gil`` so that only the thread holding the GIL counts:
the figures of a profiled run are slowed by the sampling and marked ``profiled``).

    .venv/bin/python -m bench.dispatch --lifecycles 100 --rounds 3 --store both
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.bootstrap import build, build_dispatcher
from api.cloudevents import Renderings
from api.settings import Settings
from bench import report, stores
from bench.lifecycle import CLOSE, REPLY, check_body, create_province
from bench.receiver import Receiver
from bench.servers import ADMIN_KEY
from delivery.secrets import WebhookKeys

SUBSCRIPTIONS = 4


def _post(client: TestClient, path: str, key: str, body: Any, expect: int = 200) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    if response.status_code != expect:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
    answer: dict[str, Any] = response.json()
    return answer


def start_py_spy(raw: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (the GIL holder only) until `stop_py_spy`."""
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    raw.parent.mkdir(parents=True, exist_ok=True)
    command = [exe, "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw", "--gil", "--nonblocking", "--output", str(raw)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the drain starts
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
    spy.wait(timeout=60)


def dispatcher_run(
    kind: str, lifecycles: int, receiver: Receiver, run: int, workers: int, profile: Path | None = None
) -> dict[str, Any]:
    """Fills a fresh store's outbox, then times the dispatcher draining it (to paths of this `run`: the
    receiver counts each (path, webhook-id) once)."""
    with stores.store(kind, "bench_dispatch") as url, stores.key_dir() as keys_dir:
        settings = Settings(
            database_url=url,
            key_dir=keys_dir,
            admin_key=SecretStr(ADMIN_KEY),
            webhook_allow="http://127.0.0.1",
            webhook_retry="1,1,1",
            webhook_workers=workers,
        )
        services = build(settings)
        try:
            app = create_app(services, start_views=False)  # nothing runs in the background: only the commands
            with TestClient(app) as client:
                keys = create_province("http://testserver", client)
                for number in range(SUBSCRIPTIONS):
                    key = keys["approver"] if number % 2 == 0 else keys["issuer"]
                    _post(client, "/v1/subscriptions", key, {"url": f"{receiver.base}/{kind}{run}/s{number}"}, 201)
                before = receiver.count()
                for serial in range(lifecycles):
                    check = _post(client, "/v1/checks", keys["approver"], check_body(serial + 1), 201)
                    path = f"/v1/checks/{check['id']}"
                    _post(client, f"{path}/accept", keys["issuer"], {})
                    _post(client, f"{path}/reply", keys["issuer"], REPLY)
                    _post(client, f"{path}/close", keys["approver"], CLOSE)
            dispatcher = build_dispatcher(settings, services.platform, services.database, services.webhook_keys)
            spy = start_py_spy(profile / f"dispatch-{kind}{run}.raw") if profile is not None else None
            wall, cpu = time.perf_counter(), time.process_time()
            dispatcher.drain_all()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if spy is not None:
                stop_py_spy(spy)
            dispatcher.stop()
            deliveries = receiver.count() - before
            size = _body_size(services)  # of a body of the run, for the floor
        finally:
            services.close()
    return {"deliveries": deliveries, "cpu_s": cpu, "wall_s": wall, "body_bytes": size}


def _body_size(services: Any) -> int:
    from delivery import outbox

    with services.database.reading() as cursor:
        row = cursor.execute(
            "SELECT d.subscription_id, s.department, s.url, s.secret, d.position, d.check_id, d.version, d.attempts, d.streak"
            " FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id ORDER BY d.position DESC LIMIT 1"
        ).fetchone()
    return len(Renderings(services.platform).body(outbox.Due(*row)))


def floor_run(deliveries: int, size: int, receiver: Receiver, keys: WebhookKeys) -> float:
    """CPU seconds per delivery of the floor: an Ed25519 signature and a kept-alive POST."""
    key = keys.signing_key()
    body = b"x" * size
    port = int(receiver.base.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    cpu = time.process_time()
    for number in range(deliveries):
        signature = key.sign(f"{number}.1700000000.".encode() + body)
        connection.request(
            "POST",
            "/floor",
            body=body,
            headers={"content-type": "application/json", "webhook-id": f"floor{number}", "x-sig": signature.hex()},
        )
        response = connection.getresponse()
        response.read()
    cpu = time.process_time() - cpu
    connection.close()
    return cpu / deliveries


def run_store(kind: str, args: argparse.Namespace, keys: WebhookKeys) -> dict[str, Any]:
    runs = []
    receiver = Receiver()
    try:
        for run in range(args.rounds):
            profile = Path(args.profile) if args.profile else None
            measured = dispatcher_run(kind, args.lifecycles, receiver, run, args.workers, profile)
            floor = floor_run(measured["deliveries"], measured["body_bytes"], receiver, keys)
            per = measured["cpu_s"] / max(1, measured["deliveries"])
            runs.append(
                {
                    "deliveries": measured["deliveries"],
                    "dispatcher_cpu_ms_per_delivery": round(per * 1000, 3),
                    "floor_cpu_ms_per_delivery": round(floor * 1000, 3),
                    "ratio_to_floor": round(per / floor, 2),
                    "wall_s": round(measured["wall_s"], 2),
                    "body_bytes": measured["body_bytes"],
                    **({"profiled": True} if args.profile else {}),
                }
            )
            report.log(f"{kind}: {runs[-1]}")
    finally:
        receiver.close()
    return {
        "store": kind,
        "runs": runs,
        "median_ratio_to_floor": round(statistics.median(run["ratio_to_floor"] for run in runs), 2),
        "median_cpu_ms_per_delivery": round(
            statistics.median(run["dispatcher_cpu_ms_per_delivery"] for run in runs), 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dispatch", description="The webhook dispatcher's CPU per delivery."
    )
    parser.add_argument("--lifecycles", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8, help="the dispatcher's workers (NOCERT_WEBHOOK_WORKERS)")
    parser.add_argument("--store", choices=("postgres", "sqlite", "both"), default="postgres")
    parser.add_argument("--json-out")
    parser.add_argument("--profile", metavar="DIR", help="py-spy's raw stacks of each drain into DIR (slows the run)")
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.store == "both" else [args.store]
    with stores.key_dir() as floor_keys:
        keys = WebhookKeys(floor_keys)
        results = [run_store(kind, args, keys) for kind in kinds]
    summary: dict[str, Any] = {
        **report.header("dispatch", argv),
        "settings": {"lifecycles": args.lifecycles, "rounds": args.rounds, "workers": args.workers, "subscriptions": SUBSCRIPTIONS},
        "results": results,
    }
    human = "\n".join(
        f"{r['store']}: dispatcher {r['median_cpu_ms_per_delivery']} ms CPU per delivery, {r['median_ratio_to_floor']} x the floor (median of {len(r['runs'])})"
        for r in results
    )
    report.emit(summary, human, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
