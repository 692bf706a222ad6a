"""Webhooks under lifecycle load (issue 15): how soon the first delivery attempt follows a command's
answer, and what 4 active subscriptions cost the lifecycle.

For each store (PostgreSQL by default; ``--store sqlite`` or ``both``), two phases on fresh stores with a
fresh ``nocert serve`` each, K closed-loop clients looping raise → accept → reply → close for T seconds:

1. no subscription: lifecycles/s;
2. 4 subscriptions (2 of the approver, 2 of the issuer) to a receiver answering 204 at once, in a process
   of its own (``bench.receiver``: it shares neither the load client's GIL nor its CPU time):
   lifecycles/s, and for every delivery the time from the answer of the command that recorded the event
   (its ``X-Event-Position``) to the receiver's first sight of its ``webhook-id``: p50/p95/max.

The ratio of phase 2 to phase 1 lifecycles/s is the cost of the subscriptions (goal: within 10 %), the
p95 of the first attempt the promptness (goal: at most 1 s; the contract says 2 s).

    .venv/bin/python -m bench.webhooks --seconds 20 --clients 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from bench import load, report, servers, stores
from bench.lifecycle import CLOSE, REPLY, check_body, create_province
from bench.load import Http, closed_loop
from bench.receiver import Receiver

GOAL_FIRST_ATTEMPT_P95_S = 1.0
GOAL_RATIO = 0.9


def flow(keys: dict[str, str], answered: dict[int, float]) -> load.Flow:
    """The lifecycle, remembering when each command's answer (and so its event's position) came back."""
    approver, issuer = keys["approver"], keys["issuer"]

    def remember(headers: Mapping[str, str]) -> None:
        answered[int(headers["x-event-position"])] = time.time()

    async def call(http: Http, kind: str, path: str, key: str, body: Any, expect: int = 200) -> dict[str, Any] | None:
        return await http.call(kind, "POST", path, key=key, json_body=body, expect=expect, on_answer=remember)

    async def run(http: Http, serial: int) -> bool:
        check = await call(http, "raise", "/v1/checks", approver, check_body(serial), 201)
        if check is None:
            return False
        path = f"/v1/checks/{check['id']}"
        for kind, key, body in (("accept", issuer, {}), ("reply", issuer, REPLY), ("close", approver, CLOSE)):
            if await call(http, kind, f"{path}/{kind}", key, body) is None:
                return False
        return True

    return run


@contextmanager
def started(kind: str, prefix: str, keys_dir: Any, **env: str) -> Iterator[servers.Server]:
    with stores.store(kind, prefix) as url, servers.nocert_server(url, keys_dir, None, **env) as server:
        yield server


def phase(kind: str, args: argparse.Namespace, subscriptions: int) -> dict[str, Any]:
    receiver = Receiver()
    answered: dict[int, float] = {}
    try:
        with stores.key_dir() as keys_dir, started(
            kind, f"bench_hooks{subscriptions}", keys_dir, NOCERT_WEBHOOK_ALLOW="http://127.0.0.1"
        ) as server:
            keys = create_province(server.base_url)
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                for number in range(subscriptions):
                    key = keys["approver"] if number % 2 == 0 else keys["issuer"]
                    response = client.post(
                        "/v1/subscriptions", json={"url": f"{receiver.base}/s{number}"}, headers={"Authorization": f"Bearer {key}"}
                    )
                    response.raise_for_status()
            tally = load.run_async(closed_loop(server.base_url, flow(keys, answered), clients=args.clients, seconds=args.seconds, warmup=args.warmup))
            summary: dict[str, Any] = tally.summary(args.seconds)
            if subscriptions:
                deadline = time.monotonic() + 120
                expected = len(answered) * subscriptions  # approver and issuer are party to every event
                while receiver.count() < expected and time.monotonic() < deadline:
                    time.sleep(0.2)
                delays = sorted(
                    seen - answered[int(webhook_id)]
                    for (_path, webhook_id), seen in receiver.first_seen().items()
                    if webhook_id.isdigit() and int(webhook_id) in answered
                )
                summary["deliveries"] = len(delays)
                summary["first_attempt_after_answer_s"] = {
                    "p50": round(statistics.median(delays), 3) if delays else None,
                    "p95": round(delays[int(0.95 * (len(delays) - 1))], 3) if delays else None,
                    "max": round(delays[-1], 3) if delays else None,
                }
    finally:
        receiver.close()
    return summary


def run_store(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    without = phase(kind, args, 0)
    with_four = phase(kind, args, 4)
    ratio = round(with_four["flows_per_s"] / without["flows_per_s"], 3) if without["flows_per_s"] else None
    first = with_four["first_attempt_after_answer_s"]
    return {
        "store": kind,
        "without_subscriptions": without,
        "with_4_subscriptions": with_four,
        "lifecycle_ratio": ratio,
        "goals": {
            "first_attempt_p95_le_1s": first["p95"] is not None and first["p95"] <= GOAL_FIRST_ATTEMPT_P95_S,
            "ratio_within_10_percent": ratio is not None and ratio >= GOAL_RATIO,
        },
    }


def human(result: dict[str, Any]) -> str:
    a, b, first = result["without_subscriptions"], result["with_4_subscriptions"], result["with_4_subscriptions"]["first_attempt_after_answer_s"]
    return (
        f"{result['store']}: {a['flows_per_s']} lifecycles/s without subscriptions, {b['flows_per_s']} with 4 "
        f"(ratio {result['lifecycle_ratio']}); {b['deliveries']} deliveries, first attempt after the answer "
        f"p50 {first['p50']} s, p95 {first['p95']} s, max {first['max']} s; errors {a['errors']}/{b['errors']}; goals {result['goals']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description="Webhook promptness and cost under lifecycle load.")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--store", choices=("postgres", "sqlite", "both"), default="postgres")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.store == "both" else [args.store]
    summary: dict[str, Any] = {
        **report.header("webhooks", argv),
        "settings": {"seconds": args.seconds, "clients": args.clients, "warmup": args.warmup},
        "results": [run_store(kind, args) for kind in kinds],
    }
    report.emit(summary, "\n".join(human(result) for result in summary["results"]), args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
