"""Replay speed: ``nocert views rebuild`` and ``nocert audit verify`` against the store's own read rates.

On a fresh store bulk-loaded with ``--events`` valid events (`bench.bulk`, no HTTP) and views caught up:

- raw scan: every notification read with ``recorder.select_notifications`` in pages of ``--page`` (the
  projector's batch size by default), events/s;
- scan + decode: the same plus ``app.mapper.to_domain_event`` for each, events/s;
- ``nocert views rebuild`` as a subprocess (the command operators run), wall time and events/s;
- ``nocert audit verify --json`` as a subprocess (when ``audit/verify.py`` exists), wall time and
  events/s, with its verdict;

and the ratios of the two commands to scan + decode (goal, issue 7: >= 0.5). The commands' wall times
include their process start-up (about a second). ``--profile DIR`` runs both commands under py-spy
(raw stacks and a hot-spot table; profiled runs are slower, so they run after the timed ones).

    .venv/bin/python -m bench.audit_rebuild --events 200000
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import bulk, plain_mapper, report, servers, stores
from bench.report import REPO, log, ratio

GOAL_RATIO = 0.5


def scan(services: Any, page: int, decode: bool) -> dict[str, Any]:
    mapper = services.platform.mapper
    count = 0
    after = 0
    started = time.perf_counter()
    while notifications := services.log.read(after, page):
        if decode:
            for notification in notifications:
                mapper.to_domain_event(notification)
        count += len(notifications)
        after = notifications[-1].id
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": round(seconds, 2), "events_per_s": round(count / seconds, 1)}


def run_command(name: str, command: list[str], env: dict[str, str], events: int, profile: Path | None) -> dict[str, Any]:
    if profile is not None:
        exe = shutil.which("py-spy", path=str(servers.BIN)) or shutil.which("py-spy")
        if exe is None:
            raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
        command = [exe, "record", "--subprocesses", "--rate", "100", "--format", "raw", "--output", str(profile), "--", *command]
    log(f"audit_rebuild: running {' '.join(command[-3:])}")
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "command": " ".join(command),
        "exit_code": completed.returncode,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
    }
    if completed.returncode not in (0, 1):
        result["stderr_tail"] = completed.stderr[-2000:]
    if name == "rebuild":
        match = re.search(r"rebuilt every view from (\d+) events", completed.stderr)
        if match:
            result["events"] = int(match.group(1))
            result["events_per_s"] = round(int(match.group(1)) / seconds, 1)
    elif name == "verify":
        try:
            report = json.loads(completed.stdout.strip().splitlines()[-1])
            result.update(
                ok=report.get("ok"), events=report.get("events"), checkpoints=report.get("checkpoints"),
                proofs=report.get("proofs"), problems=len(report.get("problems", [])),
                first_problems=report.get("problems", [])[:5],
            )
            if report.get("events"):
                result["events_per_s"] = round(report["events"] / seconds, 1)
        except (ValueError, IndexError):
            result["stdout_tail"] = completed.stdout[-2000:]
            result["stderr_tail"] = completed.stderr[-2000:]
    if profile is not None:
        from bench.hotspots import summarize

        result["hot_spots"] = summarize(profile)
    return result


def _succeeded(result: dict[str, Any]) -> dict[str, Any]:
    """A command that could not run (exit 2 or a crash) raises, so `undisturbed` may run it again."""
    if result["exit_code"] not in (0, 1):
        raise RuntimeError(f"{result['command']} exited {result['exit_code']}: {result.get('stderr_tail', '')[-500:]}")
    return result


def audit_available() -> bool:
    if not (REPO / "audit" / "verify.py").exists() or servers.NOCERT is None:
        return False
    help_text = subprocess.run([servers.NOCERT, "audit", "--help"], capture_output=True, text=True, timeout=60)
    return help_text.returncode == 0 and "verify" in help_text.stdout


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with stores.key_dir() as keys, stores.store(args.store, "bench_replay") as url:
        services = bulk.open_services(url, keys)
        try:
            bulk.seed(services)
            log(f"audit_rebuild: loading {args.events} events")
            result["load"] = bulk.load(services, keys, args.events, jobs=args.jobs)
            log(f"audit_rebuild: loaded in {result['load']['seconds']} s; views catching up")
            result["views_catch_up"] = bulk.catch_up_views(services)
            events = services.log.max_position()
            result["events"] = events
            log("audit_rebuild: scanning")
            result["raw_scan"], result["raw_scan_discarded_runs"] = stores.undisturbed(
                lambda: (scan(services, args.page, decode=False), scan(services, args.page, decode=False))[1],
                "raw scan",  # the first pass warms the caches and is not counted
            )
            result["scan_decode"], result["scan_decode_discarded_runs"] = stores.undisturbed(
                lambda: scan(services, args.page, decode=True), "scan+decode"
            )
        finally:
            services.close()
        env = servers.nocert_env(url, keys)
        rebuild = [*plain_mapper.command(servers.NOCERT), "views", "rebuild"]
        result["views_rebuild"], discarded = stores.undisturbed(
            lambda: _succeeded(run_command("rebuild", rebuild, env, events, None)), "views rebuild"
        )
        result["views_rebuild"]["discarded_runs_postgres_restarted"] = discarded
        if audit_available():
            verify = [*plain_mapper.command(servers.NOCERT), "audit", "verify", "--json"]
            result["audit_verify"], discarded = stores.undisturbed(
                lambda: _succeeded(run_command("verify", verify, env, events, None)), "audit verify"
            )
            result["audit_verify"]["discarded_runs_postgres_restarted"] = discarded
        else:
            result["audit_verify"] = {"skipped": "audit/verify.py or `nocert audit verify` is not there yet"}
        if args.profile:
            directory = Path(args.profile)
            directory.mkdir(parents=True, exist_ok=True)
            result["profiles"] = {
                "views_rebuild": run_command(
                    "rebuild", [*plain_mapper.command(servers.NOCERT), "views", "rebuild"], env, events, directory / "views-rebuild.raw"
                )["hot_spots"]
            }
            if "skipped" not in result["audit_verify"]:
                result["profiles"]["audit_verify"] = run_command(
                    "verify", [*plain_mapper.command(servers.NOCERT), "audit", "verify", "--json"], env, events, directory / "audit-verify.raw"
                )["hot_spots"]
    decode = result["scan_decode"]["events_per_s"]
    raw = result["raw_scan"]["events_per_s"]
    rebuild = result["views_rebuild"]["events_per_s"]
    verify = result["audit_verify"].get("events_per_s")
    result["ratios"] = {
        "views_rebuild_to_scan_decode": ratio(rebuild, decode),
        "audit_verify_to_scan_decode": ratio(verify, decode),
        "views_rebuild_to_raw_scan": ratio(rebuild, raw),
        "audit_verify_to_raw_scan": ratio(verify, raw),
        "scan_decode_to_raw_scan": ratio(decode, raw),
    }
    result["goals"] = {
        "views_rebuild_ge_0.5_scan_decode": (result["ratios"]["views_rebuild_to_scan_decode"] or 0) >= GOAL_RATIO
        and result["views_rebuild"]["exit_code"] == 0,
        "audit_verify_ge_0.5_scan_decode": None if verify is None else (result["ratios"]["audit_verify_to_scan_decode"] or 0) >= GOAL_RATIO,
        "audit_verify_ok": result["audit_verify"].get("ok"),
    }
    return result


def human(summary: dict[str, Any]) -> str:
    r, g = summary["ratios"], summary["goals"]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "MISSED")

    verify = summary["audit_verify"]
    verify_text = (
        f"audit verify {verify['events_per_s']} ev/s (ratio {r['audit_verify_to_scan_decode']}, goal >= {GOAL_RATIO}: "
        f"{verdict(g['audit_verify_ge_0.5_scan_decode'])}; ok={verify.get('ok')})"
        if "skipped" not in verify
        else "audit verify: skipped"
    )
    return (
        f"{summary['events']} events: raw scan {summary['raw_scan']['events_per_s']} ev/s, scan+decode "
        f"{summary['scan_decode']['events_per_s']} ev/s; views rebuild {summary['views_rebuild']['events_per_s']} ev/s "
        f"(ratio {r['views_rebuild_to_scan_decode']}, goal >= {GOAL_RATIO}: {verdict(g['views_rebuild_ge_0.5_scan_decode'])}); "
        + verify_text
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_rebuild", description="Replay speed against scan rates.")
    parser.add_argument("--events", type=int, default=200_000, help="events to load (default 200000)")
    parser.add_argument("--page", type=int, default=500, help="scan page size (default 500, the projector's batch)")
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--jobs", type=int, default=2, help="processes generating events for the bulk load (default 2)")
    parser.add_argument("--profile", metavar="DIR", help="also run both commands under py-spy; raw stacks into DIR")
    parser.add_argument("--json-out", help="also write the JSON summary to this file")
    parser.add_argument(
        "--plain-mapper", action="store_true",
        help="the before of per-subject encryption: eventsourcing's plain mapper (bench.plain_mapper, benchmarks only)",
    )
    args = parser.parse_args(argv)
    if args.plain_mapper:
        plain_mapper.ask()
    summary = {
        **report.header("audit_rebuild", argv),
        "settings": {"events": args.events, "page": args.page, "store": args.store, "plain_mapper": args.plain_mapper},
        **run(args),
    }
    report.emit(summary, human(summary), args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
