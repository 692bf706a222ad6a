"""CPU and RSS accounting of processes from /proc."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.servers import Server

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc --------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The children of every thread of `pid` (serve starts its background process from a thread of its own)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children.extend(int(child) for child in (task / "children").read_text().split())
    return children


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def _stat(pid: int) -> list[str] | None:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()
    return None


def cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().startswith("postgres"):
                    pids.append(int(entry.name))
    return pids


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


class CpuMeter:
    """CPU seconds spent by the server's processes, PostgreSQL, this process (the load client) and the
    whole machine over a window: where the two cores went."""

    def __init__(self, server: Server | None) -> None:
        self.server = server

    def _snapshot(self) -> dict[str, Any]:
        server = {pid: cpu_ticks(pid) for pid in (self.server.tree_pids() if self.server else [])}
        postgres = {pid: cpu_ticks(pid) for pid in postgres_pids()}
        usage = os.times()
        return {
            "server": server,
            "postgres": postgres,
            "client": usage.user + usage.system,
            "machine": _machine_ticks(),
            "wall": time.monotonic(),
        }

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> dict[str, float]:
        end = self._snapshot()
        wall = end["wall"] - self._start["wall"]

        def delta(kind: str) -> float:
            before = self._start[kind]
            return float(sum(ticks - before.get(pid, 0) for pid, ticks in end[kind].items()) / CLK_TCK)

        busy = (end["machine"][0] - self._start["machine"][0]) / CLK_TCK
        cores = os.cpu_count() or 1
        server, postgres, client = delta("server"), delta("postgres"), end["client"] - self._start["client"]
        return {
            "wall_s": round(wall, 2),
            "server_cores": round(server / wall, 2),
            "postgres_cores": round(postgres / wall, 2),
            "client_cores": round(client / wall, 2),
            "other_cores": round(max(0.0, busy - server - postgres - client) / wall, 2),
            "machine_busy_pct": round(100 * busy / (wall * cores), 1),
        }
