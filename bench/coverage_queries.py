"""Where the coverage query's time goes: each SQL statement of `projections.coverage.read_coverage`
timed on a bulk-loaded store, and the plan of the slowest one (EXPLAIN ANALYZE).

    .venv/bin/python -m bench.coverage_queries --events 300000
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench import bulk, report, stores


class _TimingCursor:
    def __init__(self, cursor: Any, statements: list[tuple[float, str, Any]]) -> None:
        self.cursor = cursor
        self.statements = statements

    def execute(self, sql: str, params: Any = ()) -> _TimingCursor:
        began = time.perf_counter()
        self.cursor.execute(sql, params)
        self.statements.append((time.perf_counter() - began, sql, params))
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.cursor.fetchall()
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.cursor.fetchone()
        return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coverage_queries", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    from domain.timefmt import utcnow
    from projections import coverage

    runs: list[dict[str, Any]] = []
    with stores.key_dir() as keys, stores.store("postgres", "bench_covq") as url:
        services = bulk.open_services(url, keys)
        try:
            bulk.seed(services)
            loaded = bulk.load(services, keys, args.events)
            caught = bulk.catch_up_views(services)
            with services.database.reading() as cursor:
                checks, answered = cursor.execute("SELECT COUNT(*), COUNT(answer_seconds) FROM view_checks").fetchone()
            for _ in range(args.repeat):
                statements: list[tuple[float, str, Any]] = []
                with services.database.reading() as cursor:
                    began = time.perf_counter()
                    coverage.read_coverage(_TimingCursor(cursor, statements), utcnow(), 0)
                    total = time.perf_counter() - began
                runs.append(
                    {"total_ms": round(total * 1000, 1),
                     "statements": [[round(s * 1000, 1), " ".join(sql.split())[:160]] for s, sql, _ in statements]}
                )
            slowest = max(statements, key=lambda item: item[0])
            with services.database.reading() as cursor:
                plan = [row[0] for row in cursor.execute("EXPLAIN ANALYZE " + slowest[1], slowest[2]).fetchall()]
        finally:
            services.close()
    best = min(runs, key=lambda run: run["total_ms"])
    summary = {
        **report.header("coverage_queries", argv),
        "events": loaded["events_in_log"],
        "checks": checks,
        "answered_checks": answered,
        "load": loaded,
        "views_catch_up": caught,
        "fastest_run": best,
        "all_runs_total_ms": [run["total_ms"] for run in runs],
        "slowest_statement_plan": plan,
    }
    medians = sum(ms for ms, sql in best["statements"] if "view_medians" in sql)
    report.emit(
        summary,
        f"coverage at {summary['events']} events / {checks} checks / {answered} answered: {best['total_ms']} ms, "
        f"of which the medians {round(medians, 1)} ms; slowest statement: {slowest[0] * 1000:.1f} ms",
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
