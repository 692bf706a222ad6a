"""Latency as the store grows: commands (raise + accept) and the coverage query at each store size.

For each size in ``--sizes`` (default 10 000 and 1 000 000 events), a store of its own (a fresh
PostgreSQL schema by default):

1. bulk-load events up to that size without HTTP (`bench.bulk`: nocert's own domain code on an
   in-memory store, sealed with the real keys, inserted with the real recorder), timed;
2. let the views catch up in-process (the follower's own `Views.follow_once`), timed.

Then ``--rounds`` interleaved rounds (small store, large store, small, large...: the machine's other load
weighs alike on both) each start ``nocert serve`` on a store and measure from one sequential client
``--samples`` raise + accept pairs and ``--coverage-samples`` ``GET /v1/coverage`` (all categories) and
``GET /v1/coverage?category=...``. A round during which PostgreSQL restarted is measured again.

Goals (issue 7): command p50 at the largest size <= 1.2 x at the smallest; coverage time independent
of the number of checks (read here as: p50 at the largest size <= 1.2 x at the smallest).

    .venv/bin/python -m bench.growth --sizes 10000,1000000
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

import httpx

from bench import bulk, report, servers, stores
from bench.report import latency_summary, log, ratio
from domain import identifiers

GOAL_RATIO = 1.2


Samples = dict[str, list[float]]
KINDS = ("raise", "accept", "raise_plus_accept", "coverage_all", "coverage_one_category")


def measure(server: servers.Server, province: bulk.Province, samples: int, coverage_samples: int, serial: int) -> tuple[Samples, list[str]]:
    """Sequential samples from one client: raise + accept pairs, then coverage queries. Failed requests
    are errors and not latencies."""
    approver = province.api_keys[bulk.APPROVERS[0]]
    issuer = province.api_keys[bulk.APPLICANT_REGIONS["350102"]]
    auditor = province.api_keys["bench-audit"]
    out: Samples = {kind: [] for kind in KINDS}
    errors: list[str] = []

    def timed(client: httpx.Client, method: str, path: str, key: str, body: Any = None, expect: int = 200) -> tuple[float, Any]:
        began = time.perf_counter()
        try:
            response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError as error:
            errors.append(f"{method} {path}: {error!r}")
            return time.perf_counter() - began, None
        seconds = time.perf_counter() - began
        if response.status_code != expect:
            errors.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return seconds, None
        return seconds, response.json()

    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        warmup = 10
        for index in range(samples + warmup):
            body = bulk._body(serial + index)
            body["category"] = bulk.CATEGORIES[0][0]
            body["applicant"]["id_number"] = identifiers.sample_id_number(serial + index, "350102")
            t_raise, check = timed(client, "POST", "/v1/checks", approver, body, 201)
            if check is None:
                continue
            t_accept, accepted = timed(client, "POST", f"/v1/checks/{check['id']}/accept", issuer, {})
            if index >= warmup and accepted is not None:
                out["raise"].append(t_raise)
                out["accept"].append(t_accept)
                out["raise_plus_accept"].append(t_raise + t_accept)
        for index in range(coverage_samples + 3):
            t_all, document = timed(client, "GET", "/v1/coverage", auditor)
            if index >= 3 and document is not None:
                out["coverage_all"].append(t_all)
            t_one, document = timed(client, "GET", f"/v1/coverage?category={bulk.CATEGORIES[0][0]}", auditor)
            if index >= 3 and document is not None:
                out["coverage_one_category"].append(t_one)
    return out, errors


def count_checks(services: Any) -> int:
    with services.database.reading() as cursor:
        return int(cursor.execute("SELECT COUNT(*) FROM view_checks").fetchone()[0])


def build_store(size: int, args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    keys = stack.enter_context(stores.key_dir())
    url = stack.enter_context(stores.store(args.store, "bench_growth"))
    services = bulk.open_services(url, keys)
    try:
        province = bulk.seed(services)
        last_report = [time.monotonic()]

        def progress(events: int) -> None:
            if time.monotonic() - last_report[0] > 30:
                last_report[0] = time.monotonic()
                log(f"growth: loaded {events} events")

        log(f"growth: loading a store to {size} events")
        loaded = bulk.load(services, keys, size, jobs=args.jobs, progress=progress)
        log(f"growth: loaded {loaded['events_added']} events in {loaded['seconds']} s; views catching up")
        caught = bulk.catch_up_views(services)
        log(f"growth: views applied {caught['events_applied']} events in {caught['seconds']} s")
        return {
            "target_events": size, "url": url, "keys": keys, "province": province, "serial": 50_000_000,
            "events": services.log.max_position(), "checks": count_checks(services), "load": loaded,
            "views_catch_up": caught, "samples": {kind: [] for kind in KINDS}, "errors": [], "attempts": [],
        }
    finally:
        services.close()


def measure_store(entry: dict[str, Any], args: argparse.Namespace) -> None:
    """One measurement of one store through a fresh server; redone (up to 3 times) when PostgreSQL restarted
    under it (other test suites on this machine stop it now and then)."""
    for _attempt in range(3):
        started_at = stores.postgres_started_at()
        with servers.nocert_server(entry["url"], entry["keys"], args.workers) as server:
            samples, errors = measure(server, entry["province"], args.samples, args.coverage_samples, entry["serial"])
        entry["serial"] += args.samples + 10
        restarted = stores.postgres_started_at() != started_at or started_at is None
        entry["attempts"].append({"errors": len(errors), "postgres_restarted": restarted})
        if not restarted:
            for kind in KINDS:
                entry["samples"][kind].extend(samples[kind])
            entry["errors"].extend(errors)
            log(
                f"growth: {entry['events']} events: raise+accept p50 {latency_summary(samples['raise_plus_accept'])['p50_ms']} ms, "
                f"coverage p50 {latency_summary(samples['coverage_all'])['p50_ms']} ms, {len(errors)} errors"
            )
            return
        log(f"growth: PostgreSQL restarted during the measurement of {entry['events']} events; measuring again")
        time.sleep(5)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = sorted(int(size) for size in args.sizes.split(","))
    started = time.monotonic()
    entries: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        for size in sizes:
            if args.budget_minutes and time.monotonic() - started > args.budget_minutes * 60:
                log(f"growth: time budget of {args.budget_minutes} min spent; not loading {size}")
                skipped.append({"target_events": size, "skipped": f"time budget of {args.budget_minutes} min spent"})
                continue
            entries.append(build_store(size, args, stack))
        # Interleaved rounds (small, large, small, large...) so that the machine's other load weighs alike.
        for number in range(args.rounds):
            for entry in entries:
                log(f"growth: round {number + 1}: measuring the store of {entry['events']} events")
                measure_store(entry, args)
    steps: list[dict[str, Any]] = []
    for entry in entries:
        steps.append(
            {
                "target_events": entry["target_events"], "events": entry["events"], "checks": entry["checks"],
                "load": entry["load"], "views_catch_up": entry["views_catch_up"],
                **{kind: latency_summary(entry["samples"][kind]) for kind in KINDS},
                "errors": len(entry["errors"]), "first_errors": entry["errors"][:5], "attempts": entry["attempts"],
            }
        )
    result: dict[str, Any] = {"steps": steps + skipped}
    if len(steps) >= 2:
        small, large = steps[0], steps[-1]
        command = ratio(large["raise_plus_accept"]["p50_ms"], small["raise_plus_accept"]["p50_ms"])
        coverage = ratio(large["coverage_all"]["p50_ms"], small["coverage_all"]["p50_ms"])
        coverage_one = ratio(large["coverage_one_category"]["p50_ms"], small["coverage_one_category"]["p50_ms"])
        result["ratios_largest_to_smallest"] = {
            "sizes": [small["events"], large["events"]],
            "command_p50": command,
            "coverage_all_p50": coverage,
            "coverage_one_category_p50": coverage_one,
        }
        result["goals"] = {
            "command_p50_le_1.2x": command is not None and command <= GOAL_RATIO,
            "coverage_p50_le_1.2x": coverage is not None and coverage <= GOAL_RATIO,
            "zero_errors": all(step["errors"] == 0 for step in steps),
        }
    return result


def human(result: dict[str, Any]) -> str:
    parts = []
    for step in result["steps"]:
        if "skipped" in step:
            parts.append(f"{step['target_events']} events: skipped ({step['skipped']})")
            continue
        parts.append(
            f"{step['events']} events/{step['checks']} checks (load {step['load']['seconds']} s, views {step['views_catch_up']['seconds']} s): "
            f"raise+accept p50 {step['raise_plus_accept']['p50_ms']} ms, coverage p50 {step['coverage_all']['p50_ms']} ms"
        )
    line = "; ".join(parts)
    if "ratios_largest_to_smallest" in result:
        r, g = result["ratios_largest_to_smallest"], result["goals"]
        line += (
            f" | command p50 ratio {r['command_p50']} (goal <= {GOAL_RATIO}: {'met' if g['command_p50_le_1.2x'] else 'MISSED'}),"
            f" coverage p50 ratio {r['coverage_all_p50']} (goal <= {GOAL_RATIO}: {'met' if g['coverage_p50_le_1.2x'] else 'MISSED'})"
        )
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description="Latency at growing store sizes.")
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated event counts (default 10000,1000000)")
    parser.add_argument("--samples", type=int, default=200, help="raise+accept pairs per size (default 200)")
    parser.add_argument("--coverage-samples", type=int, default=50, help="coverage queries per size (default 50)")
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: as `nocert serve`)")
    parser.add_argument("--jobs", type=int, default=2, help="processes generating events for the bulk load (default 2)")
    parser.add_argument("--budget-minutes", type=float, default=40.0, help="skip further sizes once this is spent (default 40)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved measurement rounds per store (default 2)")
    parser.add_argument("--json-out", help="also write the JSON summary to this file")
    args = parser.parse_args(argv)
    summary = {
        **report.header("growth", argv),
        "settings": {"sizes": args.sizes, "samples_per_round": args.samples, "coverage_samples_per_round": args.coverage_samples,
                     "rounds": args.rounds, "store": args.store},
        **run(args),
    }
    report.emit(summary, human(summary), args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
