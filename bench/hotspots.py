"""Hot spots from py-spy's raw (collapsed) stacks, as shares of all samples.

    .venv/bin/python -m bench.hotspots /tmp/prof/lifecycle-postgres.raw [--top 25]

py-spy counts a thread blocked in C (a psycopg wait, a lock) as active, so each sample is first classed
by its innermost frame: busy in Python, waiting on PostgreSQL, or idle (lock/queue/event waits and
uvloop's C loop, which includes its socket I/O). Then:

- ``role_pct``: which thread: request handlers (the thread pool running the plain ``def`` endpoints), the
  views follower thread, or the event loop / main thread;
- ``busy_self``: the innermost frame (function and line) of busy samples: where the Python CPU is;
- ``busy_project_call_sites``: the innermost frame of nocert's own code (api/, domain/, projections/,
  signing/) in busy samples: the line of ours that led to the work, library time included;
- ``busy_inclusive``: functions by the share of busy samples they appear in;
- ``postgres_wait_call_sites``: the line of ours behind each wait on PostgreSQL (round trips);
- ``blocked_sites``: samples whose innermost line is a blocking call (a lock's ``acquire``, a pipe read).

Samples inside `PASS_THROUGH` modules (the recorder wrapper, the views' database layer) are attributed
to the nocert line that called them.
"""

from __future__ import annotations

import argparse
import json
import linecache
import re
import sys
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT = ("api/", "domain/", "projections/", "signing/", "bench/", "delivery/", "privacy/", "store/")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+):(?P<line>\d+)\)$")
IDLE_LEAVES = frozenset(
    {
        "Condition.wait", "Event.wait", "Thread.join", "Queue.get", "SimpleQueue.get", "sleep", "select",
        "EpollSelector.select", "PollSelector.select", "Runner.run", "BaseEventLoop.run_forever", "Lock.acquire",
        "_wait_for_tstate_lock", "Connection.notifies", "Connection._recv",
    }
)


def _frames(stack: str) -> list[tuple[str, str, int]]:
    frames = []
    for part in stack.split(";"):
        match = FRAME.match(part)
        if match:
            frames.append((match["function"], _short(match["file"]), int(match["line"])))
    return frames


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    worktree = re.search(r"/work/wt/[^/]+/", file)  # a helper's worktree
    return file[worktree.end() :] if worktree else file


def _role(frames: list[tuple[str, str, int]]) -> str:
    functions = {function for function, _, _ in frames}
    if "Views._follow" in functions:
        return "views follower thread"
    if "WorkerThread.run" in functions:
        return "request handlers (thread pool)"
    if any(file.startswith(("concurrent/futures/process.py", "multiprocessing/pool.py")) for _, file, _ in frames) and (
        "_process_worker" in functions or "worker" in functions
    ):
        return "worker processes"
    return "event loop or main thread"


SOURCE_ROOTS = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"]), Path(__file__).resolve().parent.parent]
BLOCKING_CALL = re.compile(r"\.acquire\(|\.wait\(|\bsleep\(|\.recv\(|\._recv\(|\.get\(block")
# Pass-through layers: a sample is attributed to the nocert line that called into them.
PASS_THROUGH = ("store/recorder.py", "store/database.py")


def _source_line(file: str, number: int) -> str:
    for root in SOURCE_ROOTS:
        path = root / file
        if path.exists():
            return linecache.getline(str(path), number)
    return ""


def _state(frames: list[tuple[str, str, int]]) -> str:
    function, file, number = frames[-1]
    if file.startswith("psycopg") and function.split(".")[-1] in ("wait", "_wait", "wait_conn", "wait_c"):
        return "waiting on PostgreSQL (psycopg wait)"
    if function in IDLE_LEAVES or function.split(".")[-1] in ("wait", "select", "sleep"):
        return "idle: lock, queue or event wait; uvloop's C loop (incl. its I/O)"
    if BLOCKING_CALL.search(_source_line(file, number)):
        return "blocked in a lock acquire or pipe read (C call on that line)"
    return "busy in Python"


def _site(frames: list[tuple[str, str, int]]) -> str:
    for function, file, number in reversed(frames):
        if file.startswith(PROJECT) and not file.startswith(PASS_THROUGH):
            return f"{function} ({file}:{number})"
    return "(no nocert frame: server, framework or library code only)"


def _blocked_site(frames: list[tuple[str, str, int]]) -> str:
    function, file, number = frames[-1]
    return f"{function} ({file}:{number}) <- {_site(frames)}"


def summarize(path: Path | str, top: int = 25) -> dict[str, Any]:
    """Shares (%) of samples. CPU tables (``busy_*``) count only samples busy in Python; the PostgreSQL
    table counts the samples waiting inside psycopg, by the line of ours that asked."""
    total = 0
    roles: Counter[str] = Counter()
    states: Counter[str] = Counter()
    busy_roles: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    busy_sites: Counter[str] = Counter()
    wait_sites: Counter[str] = Counter()
    blocked_sites: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        role, state = _role(frames), _state(frames)
        roles[role] += count
        states[state] += count
        if state.startswith("waiting on PostgreSQL"):
            wait_sites[_site(frames)] += count
        if state.startswith("blocked"):
            blocked_sites[_blocked_site(frames)] += count
        if state != "busy in Python":
            continue
        busy_roles[role] += count
        function, file, number = frames[-1]
        leaf[f"{function} ({file}:{number})"] += count
        busy_sites[_site(frames)] += count
        for key in {f"{function} ({file})" for function, file, _ in frames}:
            inclusive[key] += count
    busy = sum(busy_roles.values())
    waiting = sum(wait_sites.values())

    def shares(counter: Counter[str], n: int, of: int) -> list[list[Any]]:
        return [[key, round(100 * value / of, 1)] for key, value in counter.most_common(n)] if of else []

    return {
        "profile": str(path),
        "samples": total,
        "state_pct": dict(shares(states, 5, total)),
        "role_pct": dict(shares(roles, 10, total)),
        "busy_role_pct_of_busy": dict(shares(busy_roles, 10, busy)),
        "busy_self_pct_of_busy": shares(leaf, top, busy),
        "busy_project_call_sites_pct_of_busy": shares(busy_sites, top, busy),
        "busy_inclusive_pct_of_busy": shares(inclusive, top, busy),
        "postgres_wait_call_sites_pct_of_waits": shares(wait_sites, 15, waiting),
        "blocked_sites_pct_of_all": shares(blocked_sites, 10, total),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description="Hot spots from py-spy raw stacks.")
    parser.add_argument("raw", help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    summary = summarize(args.raw, args.top)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
