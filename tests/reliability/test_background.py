"""`nocert serve`'s background process (api.background), per store: serve starts it beside its workers and
restarts it after ``kill -9``; the commands answered meanwhile lose nothing: the views reach them
(``?min_position=`` answers) and every event is delivered to the webhook subscriber; and it dies with serve."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from bench.process import _children, _cmdline, _stat
from tests.bodies import check_body
from tests.delivery.receiver import Receiver
from tests.reliability.support import Province, Server, server_env


def background_pid(server: Server, other: int | None = None) -> int:
    """The pid of serve's background process (`nocert work`), once there is one other than `other`."""
    assert server.process is not None
    deadline = time.monotonic() + 60
    while True:
        found = [pid for pid in _children(server.process.pid) if _cmdline(pid).split(b"\0")[-2:-1] == [b"work"]]
        if found and found[0] != other:
            return found[0]
        assert time.monotonic() < deadline, f"no background process:\n{server.logs()[-3000:]}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped yet does not)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


@pytest.mark.timeout(180)
def test_serve_restarts_a_killed_background_process_and_nothing_is_lost(durable_database_url: str, tmp_path: Path) -> None:
    receiver = Receiver()
    env = server_env(durable_database_url, tmp_path / "keys", NOCERT_WEBHOOK_ALLOW="http://127.0.0.1",
                     NOCERT_WEBHOOK_RETRY="0.05,0.1,0.1,0.1")
    server = Server(tmp_path / "server", env, workers=2)
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            province = Province.create(client)
            approver = province.headers("approver")
            response = client.post("/v1/subscriptions", json={"url": receiver.url, "types": None}, headers=approver)
            assert response.status_code == 201, response.text
            first = background_pid(server)
            os.kill(first, signal.SIGKILL)
            raised = []
            for _ in range(3):  # the workers answer commands while there is no background process
                response = client.post("/v1/checks", json=check_body(), headers=approver)
                assert response.status_code == 201, response.text
                raised.append((response.json()["id"], int(response.headers["X-Event-Position"])))
            second = background_pid(server, first)
            last = raised[-1][1]
            listed = client.get("/v1/checks", params={"min_position": last, "limit": 500}, headers=province.headers("auditor"))
            assert listed.status_code == 200, listed.text
            assert {check_id for check_id, _ in raised} <= {item["id"] for item in listed.json()["items"]}
            receiver.wait_for({str(position) for _, position in raised})
        assert f"background process (pid {first}) exited with status -9" in server.stderr()
        server.kill9()  # the node dies: its background process with it, though it runs in a session of its own
        deadline = time.monotonic() + 30
        while alive(second):
            assert time.monotonic() < deadline, "the background process outlived serve"
            time.sleep(0.05)
    finally:
        server.stop()
        receiver.close()
