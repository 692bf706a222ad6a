"""Server subprocesses of benchmarks: ``nocert serve`` and the floor, on 127.0.0.1 only, stopped with their
parent."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import plain_mapper
from bench.process import _children, _cmdline
from bench.report import REPO

BIN = Path(sys.executable).parent
NOCERT = str(BIN / "nocert") if (BIN / "nocert").exists() else None
ADMIN_KEY = "bench-admin-" + "k" * 40
HOST = "127.0.0.1"

# `nocert serve` (api/cli.py) runs uvicorn with exactly these settings; the floor uses the same ones.
SERVER_SETTINGS: dict[str, Any] = {
    "workers": os.cpu_count() or 1,
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_config": None,
}


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
    command = [*plain_mapper.command(NOCERT), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
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
