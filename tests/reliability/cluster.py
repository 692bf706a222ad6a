"""A throw-away PostgreSQL cluster for tests that stop their database (issue #11.14): ``initdb`` in a
temporary directory, its own port and socket directory, started and stopped with ``pg_ctl``, removed
afterwards. The machine's shared server (127.0.0.1:5432, used by every other test) is never touched.

Run as root, the cluster's programs run as the ``postgres`` user (``initdb`` refuses root); as any other
user, as that user. The binaries are found under ``/usr/lib/postgresql/<version>/bin`` (``NOCERT_PG_BIN``
overrides), or on ``PATH``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def pg_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``, or None when PostgreSQL's server programs are missing."""
    configured = os.environ.get("NOCERT_PG_BIN")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One throw-away cluster: `start`, `stop` (fast shutdown), `url`; `remove` deletes its directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="nocert-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.sockets.mkdir()
        self.log = self.root / "postgres.log"
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self._owner is not None:
            for path in (self.root, self.sockets):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def is_ready(self) -> bool:
        return _ready(self.bin, self.port)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            if self.is_ready():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._owner is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, timeout=120, capture_output=True, cwd=self.root)


def _ready(bin_dir: Path, port: int) -> bool:
    ready = bin_dir / "pg_isready"
    program = str(ready) if ready.exists() else "pg_isready"
    return subprocess.run([program, "-q", "-h", "127.0.0.1", "-p", str(port)], timeout=10).returncode == 0


def shared_server_ready(port: int = 5432) -> bool:
    """Whether the machine's shared server answers (the outage tests check they left it alone)."""
    bin_dir = pg_bin()
    return _ready(bin_dir, port) if bin_dir is not None else True


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A started throw-away cluster, stopped and removed afterwards; skips the test without the programs."""
    import pytest

    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL's server programs (initdb, pg_ctl) for a throw-away cluster")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("postgres")):
        pytest.skip("running as root needs the postgres user and runuser to run initdb")
    cluster = Cluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
