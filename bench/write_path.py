"""The write path alone: commands/s through nocert's group commit against eventsourcing's plain save, at
1, 4, 16 and 64 concurrent clients, in the same run on the same PostgreSQL.

Each "command" is one ``Application.save`` of a new one-event aggregate holding a raise's body (the floor's
aggregate, `bench.floor.Record`). Two applications, each on a fresh schema, with the store settings of
`api.settings.store_env`; they differ only in the recorder:

- ``group``: nocert's ``store.recorder:GroupCommitPostgresRecorder`` (saves that queue up share one
  transaction and one table lock, with the existence check that refuses a stale save alone);
- ``plain``: eventsourcing's own ``PostgresApplicationRecorder`` (one transaction and table lock per save),
  as the floor of `bench.lifecycle` keeps it.

For each level, ``--rounds`` rounds of ``--seconds`` each alternate the two (plain first), after a short
warm-up; the median round counts. No HTTP, no views: this is the cost of the lock and the transaction.

    .venv/bin/python -m bench.write_path --seconds 3 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from typing import Any

from bench import report, stores
from bench.floor import Floor, Record
from bench.report import log

LEVELS = (1, 4, 16, 64)
BODY: dict[str, Any] = {
    "category": "household-registration",
    "matter": {"code": "real-estate-deregistration", "name": "不动产注销登记"},
    "applicant": {"name": "林某某", "id_number": "350102199001011234"},
    "claims": {"question": "两个身份证号码是否为同一人"},
    "purpose": "不动产注销登记身份一致性核验",
    "consent": {"method": "face", "reference": "face-2024-0001"},
}


def application(url: str, recorder: str, pool_size: int) -> Floor:
    from api.settings import parse_database_url, store_env

    env = store_env(parse_database_url(url), pool_size=pool_size)
    if recorder == "plain":
        env.pop("APPLICATION_RECORDER_TOPIC", None)
    return Floor(env)


def run_level(app: Floor, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads saving for ``seconds``: saves/s, errors, latency and (group) the batch size."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    group: Any = getattr(app.recorder, "group", None)
    batches_before = (group.batches, group.writes) if group is not None else (0, 0)

    def client(index: int) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                app.save(Record(BODY))
            except Exception:
                errors[index] += 1
                continue
            latencies[index].append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    elapsed = time.perf_counter() - began
    every = [value for values in latencies for value in values]
    result: dict[str, Any] = {
        "saves_per_s": round(len(every) / elapsed, 1),
        "errors": sum(errors),
        **report.latency_summary(every),
    }
    if group is not None:
        batches, writes = group.batches - batches_before[0], group.writes - batches_before[1]
        result["mean_batch"] = round(writes / batches, 2) if batches else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per level, round and recorder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default=",".join(str(level) for level in LEVELS))
    parser.add_argument("--pool-size", type=int, default=20, help="connections per application (nocert's default)")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]

    rounds: dict[str, dict[int, list[dict[str, Any]]]] = {"plain": {}, "group": {}}
    with stores.postgres_schema("bench_wp_plain") as plain_url, stores.postgres_schema("bench_wp_group") as group_url:
        apps = {"plain": application(plain_url, "plain", args.pool_size), "group": application(group_url, "group", args.pool_size)}
        try:
            for app in apps.values():
                run_level(app, 4, 0.5)  # warm: connections, prepared statements
            for level in levels:
                for round_ in range(args.rounds):
                    for name in ("plain", "group"):
                        figures = run_level(apps[name], level, args.seconds)
                        rounds[name].setdefault(level, []).append(figures)
                        log(f"{name} x{level} round {round_ + 1}: {figures['saves_per_s']} saves/s, "
                            f"p99 {figures.get('p99_ms')} ms, errors {figures['errors']}")
        finally:
            for app in apps.values():
                app.close()

    curve = []
    for level in levels:
        median = {name: statistics.median(r["saves_per_s"] for r in rounds[name][level]) for name in rounds}
        curve.append({
            "clients": level,
            "plain_saves_per_s": median["plain"],
            "group_saves_per_s": median["group"],
            "ratio": report.ratio(median["group"], median["plain"]),
            "plain_p99_ms": statistics.median(r["p99_ms"] or 0 for r in rounds["plain"][level]),
            "group_p99_ms": statistics.median(r["p99_ms"] or 0 for r in rounds["group"][level]),
            "group_mean_batch": statistics.median(r.get("mean_batch") or 0 for r in rounds["group"][level]),
            "errors": sum(r["errors"] for name in rounds for r in rounds[name][level]),
        })
    summary = {
        **report.header("write_path", argv),
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "pool_size": args.pool_size},
        "curve": curve,
        "rounds": rounds,
    }
    human = "; ".join(
        f"x{row['clients']}: group {row['group_saves_per_s']} vs plain {row['plain_saves_per_s']} saves/s ({row['ratio']}x)"
        for row in curve
    )
    report.emit(summary, human, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
