"""What every benchmark shares: the machine, throwaway stores, server subprocesses, a closed-loop HTTP
load driver, percentiles and CPU/RSS accounting from /proc.

Everything talks to 127.0.0.1 only. Stores are throwaway: a PostgreSQL schema of its own (dropped on
exit, also on Ctrl-C) or a SQLite file in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from domain.identifiers import id_number_check_char, uscc_check_char

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOCERT = str(BIN / "nocert") if (BIN / "nocert").exists() else None
PG_URL = os.environ.get("NOCERT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_KEY = "bench-admin-" + "k" * 40
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# `nocert serve` (api/cli.py) runs uvicorn with exactly these settings; the floor uses the same ones.
SERVER_SETTINGS: dict[str, Any] = {
    "workers": os.cpu_count() or 1,
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_config": None,
}


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
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


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# -- identifiers ------------------------------------------------------------------------------


def id_number(serial: int, region: str = "350102") -> str:
    """A valid, fresh resident identity number for every ``serial`` below 20 million (tests/conftest.py's
    ``make_id_number``: 17 digits plus their ISO 7064 MOD 11-2 check character)."""
    birth = date(1950, 1, 1) + timedelta(days=(serial // 1000) % (365 * 55))
    first17 = f"{region}{birth:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_number_check_char(first17)


def uscc(serial: int) -> str:
    first17 = f"11350100MB{serial:07d}"
    return first17 + uscc_check_char(first17)


# -- stores -----------------------------------------------------------------------------------


def _pg_conninfo() -> str:
    from api.settings import parse_database_url

    return parse_database_url(PG_URL).conninfo()


@contextlib.contextmanager
def postgres_schema(prefix: str = "bench") -> Iterator[str]:
    """A fresh PostgreSQL schema; yields its ``NOCERT_DATABASE_URL``; drops it afterwards."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conninfo = _pg_conninfo()
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        with _drop_on_signal():
            yield f"{PG_URL}{separator}schema={schema}"
    finally:
        deadline = time.monotonic() + 120  # PostgreSQL may be restarting (other suites stop it)
        while True:
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
                    connection.execute("SET lock_timeout = '20s'")
                    connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                break
            except psycopg.Error as error:
                if time.monotonic() > deadline:
                    print(f"bench: could not drop schema {schema}: {error}", file=sys.stderr)
                    break
                print(f"bench: dropping schema {schema} failed ({str(error).splitlines()[0]}); retrying", file=sys.stderr)
                time.sleep(3)


def postgres_started_at() -> str | None:
    """When the PostgreSQL server last started: a change during a run means it was restarted under it."""
    import psycopg

    try:
        with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5) as connection:
            row = connection.execute("SELECT pg_postmaster_start_time()::text").fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def wait_for_postgres(patience: float = 300.0) -> str | None:
    """Waits until PostgreSQL answers (other suites on this machine stop it now and then); returns its
    start time."""
    deadline = time.monotonic() + patience
    while True:
        started = postgres_started_at()
        if started is not None or time.monotonic() > deadline:
            return started
        time.sleep(2)


T = TypeVar("T")


def undisturbed(step: Callable[[], T], name: str, attempts: int = 3) -> tuple[T, int]:
    """Runs ``step``; runs it again (up to ``attempts`` times) when PostgreSQL restarted under it, since
    its figures would then measure the outage. Returns the result and how many runs were thrown away."""
    for attempt in range(attempts):
        before = wait_for_postgres()
        try:
            result = step()
        except Exception:
            if attempt + 1 < attempts and wait_for_postgres() != before:
                log(f"{name}: PostgreSQL restarted and the step failed; running it again")
                continue
            raise
        if wait_for_postgres() == before:
            return result, attempt
        if attempt + 1 < attempts:
            log(f"{name}: PostgreSQL restarted during the step; running it again")
    log(f"{name}: PostgreSQL restarted during every attempt; keeping the last (disturbed) figures")
    return result, attempts


@contextlib.contextmanager
def sqlite_store() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="nocert-bench-sqlite-"))
    try:
        with _drop_on_signal():
            yield f"sqlite:///{directory}/nocert.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def store(kind: str, prefix: str = "bench") -> Iterator[str]:
    if kind == "postgres":
        with postgres_schema(prefix) as url:
            yield url
    elif kind == "sqlite":
        with sqlite_store() as url:
            yield url
    else:
        raise ValueError(f"unknown store {kind!r}")


@contextlib.contextmanager
def _drop_on_signal() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so `finally` blocks (schema drop, server stop) run."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def key_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="nocert-bench-keys-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def nocert_env(database_url: str, keys: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOCERT_")}
    env.update(
        NOCERT_DATABASE_URL=database_url,
        NOCERT_ADMIN_KEY=ADMIN_KEY,
        NOCERT_KEY_DIR=str(keys),
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


# -- server subprocesses ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server subprocess (its own session), its log file, and its process tree from /proc."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int, workers: int) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.port = port
        self.workers = workers
        self.base_url = f"http://{HOST}:{port}"
        self.log_path = Path(tempfile.mkstemp(prefix=f"nocert-bench-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        import httpx

        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"{self.name} did not answer /healthz within {timeout} s:\n{tail}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200 and (
                    len(self.worker_pids()) >= self.workers or self.workers <= 1
                ):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        time.sleep(1.0)  # every worker past its start-up

    def stop(self) -> None:
        process, self.process = self.process, None
        try:
            self._stop(process)
        finally:
            if not os.environ.get("NOCERT_BENCH_KEEP_LOGS"):
                self.log_path.unlink(missing_ok=True)

    def _stop(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the session this object started, by its id
            process.wait(timeout=10)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children running ``multiprocessing`` spawn), or the server
        itself when it runs one worker in-process."""
        if self.process is None:
            return []
        children = [pid for pid in _children(self.pid) if b"spawn_main" in _cmdline(pid)]
        return children or [self.pid]

    def tree_pids(self) -> list[int]:
        if self.process is None:
            return []
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(_children(pid))
        return pids

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def nocert_server(database_url: str, keys: Path, workers: int | None = None, **extra_env: str) -> Server:
    workers = workers or SERVER_SETTINGS["workers"]
    port = free_port()
    command = [NOCERT or sys.executable, *([] if NOCERT else ["-m", "api.cli"])]
    command += ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    return Server("nocert", command, nocert_env(database_url, keys, **extra_env), port, workers)


def floor_server(database_url: str, keys: Path, workers: int | None = None) -> Server:
    workers = workers or SERVER_SETTINGS["workers"]
    port = free_port()
    command = [sys.executable, "-m", "bench.floor", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    return Server("floor", command, nocert_env(database_url, keys), port, workers)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the benchmark process dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# -- /proc --------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(child) for child in text.split()]
    return []


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


# -- the closed-loop load driver -----------------------------------------------------------------


@dataclass
class Tally:
    """Requests that completed inside the measured window [start, end)."""

    start: float = math.inf
    end: float = math.inf
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    warmup_errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    flows: int = 0

    def in_window(self, moment: float) -> bool:
        return self.start <= moment < self.end

    def record(self, kind: str, began: float, ended: float, error: str | None) -> None:
        """A request counts when it *began* inside the window, however long it took (so a slow request
        that ends after the window still weighs in the percentiles and the errors)."""
        if error is not None and len(self.first_errors) < 5:
            self.first_errors.append(f"{kind}: {error}")
        if not self.in_window(began):
            if error is not None and began < self.start:
                self.warmup_errors[f"{kind}: {error.split(':')[0]}"] += 1
            return
        if error is not None:
            self.errors[f"{kind}: {error.split(':')[0]}"] += 1
        else:
            self.latencies[kind].append(ended - began)

    def flow_done(self, last_began: float) -> None:
        """A flow counts when its last request began inside the window."""
        if self.in_window(last_began):
            self.flows += 1

    def summary(self, seconds: float) -> dict[str, Any]:
        every = [value for values in self.latencies.values() for value in values]
        errors = sum(self.errors.values())
        return {
            "requests": len(every) + errors,
            "requests_per_s": round((len(every) + errors) / seconds, 1),
            "flows": self.flows,
            "flows_per_s": round(self.flows / seconds, 2),
            "latency": latency_summary(every),
            "latency_by_request": {kind: latency_summary(values) for kind, values in sorted(self.latencies.items())},
            "errors": errors,
            "errors_by_kind": dict(self.errors),
            "warmup_errors": dict(self.warmup_errors),
            "first_errors": self.first_errors,
        }


class Http:
    """One closed-loop client's requests, timed into a tally."""

    def __init__(self, client: Any, tally: Tally) -> None:
        self.client = client
        self.tally = tally
        self.last_began = 0.0

    async def call(
        self, kind: str, method: str, path: str, *, key: str | None = None, json_body: Any = None, expect: int = 200
    ) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        began = self.last_began = time.perf_counter()
        error: str | None = None
        document: dict[str, Any] | None = None
        try:
            response = await self.client.request(method, path, json=json_body, headers=headers)
            if response.status_code != expect:
                error = f"HTTP {response.status_code}: {response.text[:300]}"
            else:
                document = response.json()
        except Exception as exc:  # a transport failure is an error of the run, whatever it is
            error = f"{type(exc).__name__}: {exc}"
        self.tally.record(kind, began, time.perf_counter(), error)
        return document


Flow = Callable[[Http, int], Awaitable[bool]]


async def closed_loop(
    base_url: str,
    flow: Flow,
    *,
    clients: int,
    seconds: float,
    warmup: float,
    on_window_start: Callable[[], None] | None = None,
    on_window_end: Callable[[], None] | None = None,
    on_tick: Callable[[float], None] | None = None,
    tick_seconds: float = 1.0,
    tally: Tally | None = None,
) -> Tally:
    """``clients`` concurrent loops of ``flow`` (each on its own keep-alive connection) for ``warmup``
    seconds unmeasured, then ``seconds`` measured; every client stops by itself at the window's end
    (a flow in progress is abandoned). ``flow(http, serial)`` returns True when the flow completed.
    ``on_tick(seconds into the window)`` runs every ``tick_seconds`` during the window."""
    import httpx

    tally = tally if tally is not None else Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    serials = iter(range(10**9))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        tally.start = began + warmup
        tally.end = tally.start + seconds

        async def one_client() -> None:
            http = Http(client, tally)
            while time.perf_counter() < tally.end:
                if await flow(http, next(serials)):
                    tally.flow_done(http.last_began)

        async def window() -> None:
            await asyncio.sleep(max(0.0, tally.start - time.perf_counter()))
            if on_window_start is not None:
                on_window_start()
            next_tick = tally.start
            while True:
                now = time.perf_counter()
                if now >= tally.end:
                    break
                if on_tick is not None and now >= next_tick:
                    on_tick(now - tally.start)
                    next_tick += tick_seconds
                wake = min(next_tick, tally.end) if on_tick is not None else tally.end
                await asyncio.sleep(max(0.0, wake - time.perf_counter()))
            if on_window_end is not None:
                on_window_end()
            if on_tick is not None:
                on_tick(time.perf_counter() - tally.start)

        tasks = [loop.create_task(one_client()) for _ in range(clients)]
        await asyncio.gather(window(), *tasks)
    return tally


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# -- output --------------------------------------------------------------------------------------


def emit(summary: dict[str, Any], human: str, json_out: str | None) -> None:
    """Prints the JSON summary and then one human line; also writes the JSON to ``json_out``.
    Notes in ``machine`` whether PostgreSQL restarted during the run and the load average at its end."""
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
