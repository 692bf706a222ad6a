"""Storage faults under a running SQLite service: a store that turns read-only, and a full disk.

As root, file permissions stop nothing (``chmod 0444`` still lets root write), so the faults are made
the way an operator meets them:

- read-only: ``chattr +i`` (immutable, which binds root too) on the database file, its write-ahead log
  and its directory. Not on the ``-shm`` file: SQLite maps it into memory, and a write to a mapping of an
  immutable file kills the process with SIGBUS; that fault is a crash, which test_crash.py covers. A
  read-only *remount* is refused while the server holds the files open for writing (EBUSY), so it cannot
  be applied under a running service.
- full disk: the store on a 16 MiB tmpfs, filled up with a filler file.

Either way: commands are answered 503 ``unavailable`` (problem+json, Retry-After) with one clear log line
naming the cause, never another 5xx; reads keep working; once the fault is lifted the same process
writes again; every command answered 2xx (before, during, after) is in the store; ``PRAGMA
integrity_check`` is ``ok``; and the views equal a rebuild. Both need root (``chattr``, ``mount``) and
skip without it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.bodies import check_body
from tests.reliability.support import Ack, Province, Server, converge_and_rebuild, server_env, verify_acks

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chattr +i, mount)")


def _raise(client: httpx.Client, province: Province, acks: list[Ack], **overrides: object) -> httpx.Response:
    response = client.post("/v1/checks", json=check_body(**overrides), headers=province.headers("approver"))
    if response.is_success:
        document = response.json()
        acks.append(Ack(document["id"], "raise", int(response.headers["x-event-position"]), document["status"], 1))
    return response


def _fault_answers(
    client: httpx.Client, province: Province, acks: list[Ack], attempts: int, **overrides: object
) -> list[tuple[int, str | None, float]]:
    """Raises checks during the fault (one with an Idempotency-Key, which the gateway stores first)."""
    seen = []
    for n in range(attempts):
        headers = province.headers("approver", **({"Idempotency-Key": f"fault-{n}"} if n % 2 else {}))
        started = time.monotonic()
        response = client.post("/v1/checks", json=check_body(**overrides), headers=headers)
        seconds = time.monotonic() - started
        if response.is_success:
            document = response.json()
            acks.append(Ack(document["id"], "raise", int(response.headers["x-event-position"]), document["status"], 1))
            seen.append((response.status_code, None, seconds))
            continue
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        seen.append((response.status_code, response.json()["code"], seconds))
    return seen


def _integrity(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


def _fault_test(tmp_path: Path, store: Path, apply: Callable[[], None], lift: Callable[[], None], label: str,
                **overrides: object) -> None:
    key_dir = tmp_path / "keys"
    database = store / "nocert.db"
    url = f"sqlite:///{database}"
    env = server_env(url, key_dir)
    server = Server(tmp_path / "server", env)
    acks: list[Ack] = []
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            province = Province.create(client)
            for _ in range(5):
                assert _raise(client, province, acks).status_code == 201
            check_id = acks[0].check_id
            time.sleep(1.5)  # let the views and a checkpoint settle before the fault
            try:
                apply()
                during = _fault_answers(client, province, acks, 8, **overrides)
                read = client.get(f"/v1/checks/{check_id}", headers=province.headers("approver"))
                ready = client.get("/readyz")
            finally:
                lift()
            statuses = sorted({(status, code) for status, code, _ in during})
            assert all(status in (201, 503) for status, _, _ in during), during
            assert any(status == 503 for status, _, _ in during), f"the fault did not show: {during}"
            assert all(code in (None, "unavailable") for _, code, _ in during), during
            assert read.status_code == 200, read.text
            # The same process writes again once the fault is lifted (the follower retries on its own).
            deadline = time.monotonic() + 30
            while _raise(client, province, acks).status_code != 201:
                assert time.monotonic() < deadline, "no recovery within 30 s of lifting the fault"
                time.sleep(0.5)
            report = verify_acks(client, province, acks)
            convergence = converge_and_rebuild(url, key_dir, env)
        stderr = server.stderr()
        fault_lines = [line for line in stderr.splitlines() if "store unavailable on POST /v1/checks" in line]
        print(
            f"\n[storage {label}] answers_during_fault={statuses} "
            f"max_latency_s={max(s for _, _, s in during):.2f} readyz_during={ready.status_code} "
            f"acknowledged={report.acknowledged} lost={len(report.lost)} integrity={_integrity(database)} "
            f"log_line={fault_lines[0][24:160] if fault_lines else None!r}"
        )
        assert fault_lines, "no log line names the fault:\n" + stderr[-3000:]
        assert "unhandled error" not in stderr and "Exception in ASGI application" not in stderr, stderr[-3000:]
        assert server.process is not None and server.process.poll() is None, "the server died"
        assert not report.lost, "\n".join(report.lost)
        assert _integrity(database) == "ok"
        assert not convergence.differences, "\n".join(convergence.differences)
        assert convergence.audit.get("ok") is True, f"nocert audit verify: {convergence.audit}"
    finally:
        server.kill9()


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@pytest.mark.timeout(180)
def test_read_only_store_answers_503_and_recovers(tmp_path: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    store = tmp_path / "store"
    store.mkdir()
    probe = store / "probe"
    probe.write_text("x")
    try:
        _chattr("+i", probe)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"this file system does not support chattr +i: {error.stderr.strip()}")
    _chattr("-i", probe)
    probe.unlink()
    database = store / "nocert.db"
    frozen = [database, Path(f"{database}-wal"), store]

    def apply() -> None:
        _chattr("+i", *frozen)

    def lift() -> None:
        _chattr("-i", *frozen)

    try:
        _fault_test(tmp_path, store, apply, lift, "read-only (chattr +i)")
    finally:
        subprocess.run(["chattr", "-i", *map(str, frozen)], capture_output=True)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(directory: Path) -> Path:
    """Writes a filler file until the file system is full; returns it."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as out:
        while chunk:
            try:
                out.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]
        os.fsync(out.fileno())
    return filler


@pytest.mark.timeout(180)
def test_full_disk_answers_503_and_recovers(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with _tmpfs(store, "16m"):
        filler: list[Path] = []

        def apply() -> None:
            filler.append(_fill(store))

        def lift() -> None:
            for path in filler:
                path.unlink(missing_ok=True)

        # Large claims, so that the write-ahead log has to grow (a write that fits in it needs no new space).
        _fault_test(tmp_path, store, apply, lift, "disk full (tmpfs)", claims={"pad": "x" * 40_000})
