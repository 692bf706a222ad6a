"""Benchmark reports: the machine a run was made on, percentiles and ratios, and the JSON and text output."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from bench.stores import postgres_started_at  # here: the stores log through this module

    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "api", "domain", "projections", "signing"))
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "git_commit": commit,
        "source_tree_dirty": dirty,
        "postgres_started_at": postgres_started_at(),
    }


def header(name: str, argv: list[str] | None) -> dict[str, Any]:
    """The first keys of every benchmark's JSON summary: its name, the command as run, the machine."""
    arguments = argv if argv is not None else sys.argv[1:]
    return {"benchmark": name, "command": f"python -m bench.{name} " + " ".join(arguments), "machine": machine()}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# -- statistics ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    def ms(value: float | None) -> float | None:
        return round(value * 1000, 2) if value is not None else None

    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p95_ms": ms(percentile(seconds, 95)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds) if seconds else None),
        "mean_ms": ms(sum(seconds) / len(seconds) if seconds else None),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


# -- output --------------------------------------------------------------------------------------


def emit(summary: dict[str, Any], human: str, json_out: str | None) -> None:
    """Prints the JSON summary and then one human line; also writes the JSON to ``json_out``.
    Notes in ``machine`` whether PostgreSQL restarted during the run and the load average at its end."""
    from bench.stores import postgres_started_at  # here: the stores log through this module

    host = summary.get("machine")
    if isinstance(host, dict):
        host["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        now = postgres_started_at()
        host["postgres_restarted_during_run"] = now != host.get("postgres_started_at")
        if host["postgres_restarted_during_run"]:
            human += (
                f"\nNOTE: PostgreSQL restarted during the run (now started at {now}); steps it disturbed were run "
                "again where the benchmark can (see discarded_* / attempts in the JSON)."
            )
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    print(human)
    if json_out:
        Path(json_out).write_text(text + "\n")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
