"""Soak: the server's memory under lifecycle load for N minutes.

A fresh ``nocert serve`` (fresh PostgreSQL schema), the lifecycle load of `bench.lifecycle` (K clients,
raise → accept → reply → close), and every ``--interval`` seconds (default 10) the RSS of each server
process (the uvicorn supervisor and its workers, from /proc). Reports the series, the growth of the
workers' total RSS from the first sample to the last (goal, issue 7: < 10 %), the growth from the first
sample after one minute of load and over the second half alone (what remains once start-up is over and
caches have filled), throughput per interval and errors.

    .venv/bin/python -m bench.soak --minutes 10
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench import lifecycle, load, process, report, servers, stores
from bench.report import log

GOAL_GROWTH_PCT = 10.0


def growth_pct(first: int, last: int) -> float | None:
    return round(100 * (last - first) / first, 1) if first else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    with stores.key_dir() as keys, stores.store(args.store, "bench_soak") as url, servers.nocert_server(url, keys, args.workers) as server:
        log(f"soak: nocert serve on {server.base_url} ({server.workers} workers), {args.clients} clients, {args.minutes} min")
        keys_by_role = lifecycle.create_province(server.base_url)
        flows_before = [0]
        tally = load.Tally()

        def sample(elapsed: float) -> None:
            workers = server.worker_pids()
            per_worker = [process.rss_kib(pid) for pid in workers]
            supervisor = process.rss_kib(server.pid) if server.pid not in workers else 0
            samples.append(
                {
                    "t_s": round(elapsed, 1),
                    "workers_rss_kib": per_worker,
                    "workers_total_rss_kib": sum(per_worker),
                    "supervisor_rss_kib": supervisor,
                    "lifecycles_in_interval": tally.flows - flows_before[0],
                }
            )
            flows_before[0] = tally.flows
            log(f"soak: t={elapsed:6.0f} s workers RSS {[round(kib / 1024, 1) for kib in per_worker]} MiB, {tally.flows} lifecycles")

        load.run_async(
            load.closed_loop(
                server.base_url,
                lifecycle.lifecycle_flow(keys_by_role),
                clients=args.clients,
                seconds=args.minutes * 60,
                warmup=0.0,
                on_tick=sample,
                tick_seconds=args.interval,
                tally=tally,
            )
        )
        load_summary = tally.summary(args.minutes * 60)
        load_summary.pop("latency_by_request", None)
        load_summary.update(lifecycle.catch_up(server.base_url))
        load_summary["server_log"] = lifecycle.server_log_problems(server)
    totals = [s["workers_total_rss_kib"] for s in samples]
    half = len(totals) // 2
    result: dict[str, Any] = {
        "samples": samples,
        "load": load_summary,
        "first_total_rss_mib": round(totals[0] / 1024, 1) if totals else None,
        "last_total_rss_mib": round(totals[-1] / 1024, 1) if totals else None,
        "peak_total_rss_mib": round(max(totals) / 1024, 1) if totals else None,
        "growth_pct": growth_pct(totals[0], totals[-1]) if totals else None,
        "second_half_growth_pct": growth_pct(totals[half], totals[-1]) if len(totals) > 2 else None,
    }
    # What start-up under load costs (lazy imports, pools, caches filling) against what keeps growing.
    loaded = [s["workers_total_rss_kib"] for s in samples if s["t_s"] >= 60]
    result["growth_after_first_minute_pct"] = growth_pct(loaded[0], loaded[-1]) if len(loaded) > 1 else None
    result["goals"] = {
        "rss_growth_lt_10pct": result["growth_pct"] is not None and result["growth_pct"] < GOAL_GROWTH_PCT,
        "zero_errors": load_summary["errors"] == 0,
    }
    return result


def human(summary: dict[str, Any]) -> str:
    g = summary["goals"]
    return (
        f"soak {summary['settings']['minutes']} min: workers RSS {summary['first_total_rss_mib']} -> {summary['last_total_rss_mib']} MiB "
        f"(peak {summary['peak_total_rss_mib']}), growth {summary['growth_pct']} % (goal < {GOAL_GROWTH_PCT} %: "
        f"{'met' if g['rss_growth_lt_10pct'] else 'MISSED'}), after the first minute "
        f"{summary['growth_after_first_minute_pct']} %, second half {summary['second_half_growth_pct']} %; "
        f"{summary['load']['flows_per_s']} lifecycles/s, {summary['load']['errors']} errors"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description="Server RSS under lifecycle load.")
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: as `nocert serve`)")
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--json-out", help="also write the JSON summary to this file")
    args = parser.parse_args(argv)
    summary: dict[str, Any] = {
        **report.header("soak", argv),
        "settings": {"minutes": args.minutes, "interval": args.interval, "clients": args.clients, "store": args.store},
    }
    result, discarded = stores.undisturbed(lambda: run(args), "soak", attempts=2)
    summary.update(result)
    summary["discarded_runs_postgres_restarted"] = discarded
    report.emit(summary, human(summary), args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
