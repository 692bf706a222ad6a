"""The split of `nocert serve` (api.background): request workers that run no background job and hand their
wake-ups to the node's background process, its listeners, and the supervisor that restarts it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api import main
from api.background import Advances, Relay, Supervisor, Wakeups
from api.bootstrap import build
from tests.api.conftest import settings_for

JOBS = ("nocert-views", "nocert-webhooks", "nocert-overdue", "nocert-witness")
ADMIN = "admin-" + "w" * 40


def _job_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith(JOBS)}


def _listening(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(10)
    return listener


@pytest.fixture
def worker_env(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wake = tmp_path / "wake.sock"
    for name, value in {"NOCERT_DATABASE_URL": sqlite_url, "NOCERT_KEY_DIR": str(tmp_path / "keys"),
                        "NOCERT_ADMIN_KEY": ADMIN, "NOCERT_WAKE_SOCKET": str(wake)}.items():
        monkeypatch.setenv(name, value)
    return wake


def _department(client: TestClient) -> None:
    body = {"id": "fz-estate", "name": "福州市不动产登记中心", "uscc": "91350100M000100Y43", "roles": ["approver"],
            "kind": "real-estate", "region": "350102"}
    response = client.post("/v1/departments", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 201, response.text


def test_a_worker_of_serve_runs_no_background_job_and_wakes_the_background_process(worker_env: Path) -> None:
    listener = _listening(worker_env)
    app = main.create_worker()
    try:
        with TestClient(app) as client:
            assert _job_threads() == set()
            _department(client)
            assert listener.recv(16) == b"c"  # SQLite: the commit, told by datagram
    finally:
        app.state.services.close()
        listener.close()


def test_an_app_started_otherwise_runs_the_jobs_in_its_own_threads(worker_env: Path) -> None:
    app = main.create()
    try:
        with TestClient(app):
            assert {name.rstrip("-0123456789") for name in _job_threads()} >= {"nocert-views", "nocert-webhooks", "nocert-overdue"}
    finally:
        app.state.services.close()


def test_a_worker_on_postgresql_relays_only_the_urgent_wake_ups(postgres_url: str, tmp_path: Path) -> None:
    """Commits reach the background process by the recorder's NOTIFY there: no datagram for them."""
    services = build(settings_for(postgres_url, tmp_path / "keys"))
    listener = _listening(tmp_path / "wake.sock")
    try:
        relay = Relay(str(tmp_path / "wake.sock"), commits=services.location.kind != "postgres")
        relay.views(False)
        relay.webhooks()
        relay.views(True)
        assert listener.recv(16) == b"u"
        relay.close()
    finally:
        listener.close()
        services.close()


class Nudges:
    """Stands in for the views and the dispatcher: records their nudges."""

    def __init__(self) -> None:
        self.views, self.urgent, self.webhooks = threading.Event(), threading.Event(), threading.Event()
        self.advance_listeners: list[Any] = []

    def services(self, kind: str, conninfo: Any = None, platform: Any = None) -> Any:
        follower = SimpleNamespace(on_advance=self.advance_listeners.append)
        views = SimpleNamespace(nudge=lambda urgent=False: (self.urgent if urgent else self.views).set(), follower=follower)
        webhooks = SimpleNamespace(nudge=self.webhooks.set)
        location = SimpleNamespace(kind=kind, conninfo=conninfo)
        return SimpleNamespace(location=location, platform=platform, views=views, webhooks=webhooks)

    def clear(self) -> None:
        for event in (self.views, self.urgent, self.webhooks):
            event.clear()


def test_the_background_process_wakes_on_the_workers_datagrams(tmp_path: Path) -> None:
    nudges = Nudges()
    path = str(tmp_path / "wake.sock")
    wakeups = Wakeups(nudges.services("sqlite"), path)
    relay = Relay(path, commits=True)
    wakeups.start()
    try:
        relay.webhooks()
        assert nudges.views.wait(10) and nudges.webhooks.wait(10)
        assert not nudges.urgent.is_set()
        relay.views(True)
        assert nudges.urgent.wait(10)
    finally:
        relay.close()
        wakeups.stop()
    assert not Path(path).exists()


def test_the_background_process_tells_the_workers_when_the_views_moved(tmp_path: Path) -> None:
    """After each batch of the follower (its on_advance), every worker's socket hears of it; the socket of a
    worker that died is removed."""
    nudges = Nudges()
    path = str(tmp_path / "wake.sock")
    wakeups = Wakeups(nudges.services("sqlite"), path)
    moved = threading.Event()
    worker = Advances(path, moved.set)
    dead = tmp_path / "wake.sock.999999"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(dead))  # bound, then closed: nobody listens there
    try:
        [announce] = nudges.advance_listeners
        announce()
        assert moved.wait(10)
        assert not dead.exists()
    finally:
        worker.close()
        wakeups.stop()
    assert not Path(worker.path).exists()


def test_a_relay_without_listener_drops_its_wake_ups(tmp_path: Path) -> None:
    relay = Relay(str(tmp_path / "nobody.sock"), commits=True)
    relay.views(False)
    relay.views(True)
    relay.close()


def test_the_background_process_wakes_on_postgresql_notifications(postgres_url: str, tmp_path: Path) -> None:
    services = build(settings_for(postgres_url, tmp_path / "keys"))
    nudges = Nudges()
    channel = services.platform.recorder.channel_name  # type: ignore[attr-defined]
    fake = nudges.services("postgres", conninfo=services.location.conninfo, platform=services.platform)
    wakeups = Wakeups(fake, None)
    wakeups.start()
    try:
        assert nudges.views.wait(10)  # once listening: for what was committed while nobody listened
        deadline = time.monotonic() + 10
        with psycopg.connect(services.location.conninfo(), autocommit=True) as connection:
            while True:  # the first nudge comes after LISTEN: this notification is seen
                nudges.clear()
                connection.execute(sql.SQL("SELECT pg_notify({0}, '')").format(sql.Literal(channel)))
                if nudges.views.wait(1) and nudges.webhooks.is_set():
                    break
                assert time.monotonic() < deadline, "no nudge for the notification"
    finally:
        wakeups.stop()
        services.close()


@pytest.fixture
def supervised() -> Iterator[Supervisor]:
    supervisor = Supervisor([sys.executable, "-c", "import time; time.sleep(120)"])
    supervisor.start()
    yield supervisor
    supervisor.stop()


def _next_pid(supervisor: Supervisor, other: int | None = None) -> int:
    deadline = time.monotonic() + 30
    while (pid := supervisor.pid) is None or pid == other:
        assert time.monotonic() < deadline, "the supervisor started no process"
        time.sleep(0.02)
    return pid


def test_the_supervisor_restarts_a_killed_background_process_and_logs_it(
    supervised: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "nocert.background")
    first = _next_pid(supervised)
    os.kill(first, signal.SIGKILL)
    second = _next_pid(supervised, first)
    assert second != first
    assert f"background process (pid {first}) exited with status -9" in caplog.text


def test_the_supervisor_stops_its_process(supervised: Supervisor) -> None:
    pid = _next_pid(supervised)
    supervised.stop()
    assert supervised.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _niceness(pid: int) -> dict[int, int]:
    """The niceness of each thread of `pid` (/proc/<pid>/task/<tid>/stat's 19th field)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            found[int(task.name)] = int(fields[16])
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux's per-thread niceness")
@pytest.mark.parametrize("nice", ["7", "0"])
def test_the_background_process_runs_nicer_than_serve_by_its_setting(
    worker_env: Path, tmp_path: Path, nice: str
) -> None:
    env = {**os.environ, "NOCERT_BACKGROUND_NICE": nice, "NOCERT_METRICS_DIR": str(tmp_path / "metrics")}
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "work"], env=env, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # as serve starts it: its own session, so its own autogroup
    try:
        assert process.stderr is not None
        for line in process.stderr:  # its threads have started once it says its jobs run
            if "background jobs running" in line:
                break
        else:
            pytest.fail(f"nocert work exited with {process.wait()}")
        threads = _niceness(process.pid)
        assert len(threads) > len(JOBS)  # the jobs' threads and those started before them (pools)
        assert set(threads.values()) == {os.getpriority(os.PRIO_PROCESS, 0) + int(nice)}
        group = Path(f"/proc/{process.pid}/autogroup")
        if group.exists():  # the kernel's scheduling group of its session, which else competes with serve's as an equal
            assert group.read_text().split()[-1] == nice
    finally:
        process.terminate()
        process.wait(timeout=30)
