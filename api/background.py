"""The background process of a node (issues #14, #15): the singletons out of the request workers.

``nocert serve`` runs its uvicorn workers for requests only and ONE ``nocert work`` process beside them
(`Supervisor`: started with serve, restarted with a growing back-off when it dies, stopped with serve,
each exit logged). That process runs every background job of the node (`api.bootstrap.Services.start`:
the views follower and checkpoint signer, the Overdue timer, the webhook dispatcher, the witnessing), each
still competing for its leader lock with the other nodes' as before, so fail-over is unchanged.

The workers' commits still wake it at once (`Wakeups`):

- PostgreSQL: every transaction that inserts events sends ``pg_notify`` on the event table's channel
  (`store.recorder`); the background process LISTENs on it on a connection of its own. That reaches the
  background process of every node, whichever holds a lock.
- Both stores: a worker sends a one-byte datagram (`Relay`) to a Unix socket of its node's background
  process (``NOCERT_WAKE_SOCKET``, by default in serve's metrics directory): ``c`` after a commit (SQLite only: PostgreSQL's
  notification says it already), ``u`` when a reader waits for a position (``?min_position=``: the follower
  then works without gathering). A datagram costs the worker one non-blocking system call and no thread;
  one that finds no listener (the background process restarting) is dropped: the follower and the
  dispatcher poll anyway (every 0.2 s), so a lost wake-up costs latency, never an event.

The waits of ``?min_position=`` in the workers poll the views' tracking table (`api.waits`), which the
follower of any process updates, every 50 ms; to answer sooner than that, each worker binds a socket of its
own beside the node's (``<NOCERT_WAKE_SOCKET>.<pid>``, `Advances`) and the background process sends ``a``
to each after every batch its follower applied: the worker's waits read the position again at once (the
socket of a worker that died is removed by the first send that finds nobody).

The background process can run at a lower CPU priority than the workers (``NOCERT_BACKGROUND_NICE`` above serve's, default 0;
`lower_priority`): a node short of CPU answers requests first, and its views, webhooks
and timers catch up when the load lets them (docs/scaling.md 2.5).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.bootstrap import Services

logger = logging.getLogger("nocert.background")

COMMIT, URGENT, ADVANCED = b"c", b"u", b"a"
LISTEN_TIMEOUT = 0.5  # how often the listening threads look whether they are stopped
RESTART_MIN_SECONDS, RESTART_MAX_SECONDS = 0.5, 30.0
HEALTHY_SECONDS = 30.0  # a background process that ran this long restarts at once after it died
STOP_SECONDS = 30.0


# -- the workers' side --------------------------------------------------------------------------


class Relay:
    """A worker's wake-ups for its node's background process (see the module's docstring)."""

    def __init__(self, path: str, *, commits: bool) -> None:
        self.path = path
        self.commits = commits  # SQLite: commits are told by datagram; PostgreSQL's own notification does it
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def views(self, urgent: bool) -> None:
        if urgent:
            self._send(URGENT)
        elif self.commits:
            self._send(COMMIT)

    def webhooks(self) -> None:
        if self.commits:
            self._send(COMMIT)

    def _send(self, message: bytes) -> None:
        try:
            self._socket.sendto(message, self.path)
        except OSError:  # no listener now (restarting), or its queue is full (it is awake already)
            pass

    def close(self) -> None:
        self._socket.close()


class Advances:
    """A worker's socket (``<path>.<pid>``) on which its node's background process says the views moved:
    calls `moved` (the views' in-process signal, `Follower.notify`) for each datagram, in a thread."""

    def __init__(self, path: str, moved: Callable[[], None]) -> None:
        self.path = f"{path}.{os.getpid()}"
        self._moved = moved
        self._socket = _bound(self.path)
        if self._socket is not None:
            threading.Thread(target=self._listen, args=(self._socket,), name="nocert-advances", daemon=True).start()

    def _listen(self, listening: socket.socket) -> None:
        while True:
            try:
                listening.recv(16)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self._moved()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            Path(self.path).unlink(missing_ok=True)


def serve_requests_only(services: Services, wake_path: str | None) -> None:
    """A request worker of serve: its nudges go to the node's background process (no job runs here), which
    tells it when the views moved."""
    if wake_path is None:
        return
    relay = Relay(wake_path, commits=services.location.kind != "postgres")
    services.views.relay = relay.views
    services.webhooks.relay = relay.webhooks
    Advances(wake_path, services.views.follower.notify)


# -- the background process's side ----------------------------------------------------------------


class Wakeups:
    """The background process's listeners: the wake-up socket, and on PostgreSQL the event channel."""

    def __init__(self, services: Services, wake_path: str | None) -> None:
        self.services = services
        self.wake_path = wake_path
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socket: socket.socket | None = None
        self._announcer: socket.socket | None = None
        if wake_path is not None:
            self._socket = _bound(wake_path)
            self._announcer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._announcer.setblocking(False)
            services.views.follower.on_advance(self._announce)

    def start(self) -> None:
        if self._socket is not None:
            self._spawn(self._datagrams, "nocert-wake-socket")
        if self.services.location.kind == "postgres":
            self._spawn(self._notifications, "nocert-wake-listen")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=STOP_SECONDS)
        self._threads = []
        if self._socket is not None:
            self._socket.close()
            if self.wake_path is not None:
                Path(self.wake_path).unlink(missing_ok=True)
        if self._announcer is not None:
            self._announcer.close()

    def _announce(self) -> None:
        """In the follower's thread, after a batch: tells the workers of the node that the views moved."""
        if self._announcer is None or self.wake_path is None:
            return
        for worker in Path(self.wake_path).parent.glob(f"{Path(self.wake_path).name}.*"):
            try:
                self._announcer.sendto(ADVANCED, str(worker))
            except (ConnectionRefusedError, FileNotFoundError):
                worker.unlink(missing_ok=True)  # a worker that died
            except OSError:  # its queue is full: it has a wake-up to read already
                pass

    def _commit(self) -> None:
        self.services.views.nudge()
        self.services.webhooks.nudge()

    def _datagrams(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                message = self._socket.recv(16)
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop
            if message == URGENT:
                self.services.views.nudge(urgent=True)
            else:
                self._commit()

    def _notifications(self) -> None:
        import psycopg

        channel = self.services.platform.recorder.channel_name  # type: ignore[attr-defined]  # PostgreSQL's recorder
        backoff = RESTART_MIN_SECONDS
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.services.location.conninfo(), autocommit=True, connect_timeout=5) as connection:
                    connection.execute(psycopg.sql.SQL("LISTEN {0}").format(psycopg.sql.Identifier(channel)))
                    self._commit()  # what was committed while nobody listened
                    backoff = RESTART_MIN_SECONDS
                    while not self._stopping.is_set():
                        if any(True for _ in connection.notifies(timeout=LISTEN_TIMEOUT, stop_after=1)):
                            self._commit()
            except psycopg.Error as error:
                logger.warning("listening for commits failed (%s); again in %.1f s, polling meanwhile", error, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, RESTART_MAX_SECONDS)


def _bound(path: str) -> socket.socket | None:
    """The wake-up socket at `path` (replacing the one of a background process that died); None, logged, when
    it cannot be made (the workers' wake-ups then wait for the next poll)."""
    made = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        Path(path).unlink(missing_ok=True)
        made.bind(path)
    except OSError as error:
        made.close()
        logger.warning("no wake-up socket at %s (%s): what it would tell waits for the next poll", path, error)
        return None
    made.settimeout(LISTEN_TIMEOUT)
    return made


def lower_priority(increment: int) -> None:
    """Makes this process `increment` nicer than it was started (``NOCERT_BACKGROUND_NICE``): every thread
    it runs now (Linux keeps a niceness per thread) and, so, every thread they start. Under load the kernel
    then gives the request workers the cores first; the background jobs take what the requests leave.

    A process that leads its own session (serve starts it so) is also its own scheduling group where the
    kernel groups by session (Linux's autogroup, on by default): its threads' niceness then counts only
    among themselves, and the group as a whole competes with serve's as an equal. So the group's niceness
    is raised too (/proc/self/autogroup; only when this process leads the session, which then holds
    nothing else)."""
    if increment <= 0:
        return
    tasks = Path("/proc/self/task")
    threads = [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [0]
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + increment)
        except OSError:  # a thread that ended meanwhile
            pass
    group = Path("/proc/self/autogroup")
    if os.getsid(0) == os.getpid() and group.exists():
        try:
            now = int(group.read_text().split("nice")[-1])
            group.write_text(str(min(now + increment, 19)))
        except (OSError, ValueError) as error:
            logger.warning("could not lower the priority of the background process's scheduling group: %s", error)


def run_background(services: Services, wake_path: str | None) -> int:
    """`nocert work`: runs the node's background jobs until SIGTERM or SIGINT, then stops them."""
    lower_priority(services.settings.background_nice)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    wakeups = Wakeups(services, wake_path)
    services.start()
    wakeups.start()
    logger.info("nocert background jobs running on %s store (pid %d)", services.location.kind, os.getpid())
    try:
        stopped.wait()
    finally:
        wakeups.stop()
        services.close()
    logger.info("nocert background jobs stopped")
    return 0


# -- serve's side ---------------------------------------------------------------------------------


def work_command() -> list[str]:
    """How serve starts `nocert work`: the same Python, through the same main module as serve itself (a
    console script's is `api.cli`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = spec.name if spec is not None and spec.name not in ("__main__", "") else "api.cli"
    return [sys.executable, "-m", module, "work"]


class Supervisor:
    """Runs ``command`` (the background process) in a thread of serve: restarts it when it exits with a
    back-off doubling from `RESTART_MIN_SECONDS` to `RESTART_MAX_SECONDS` (reset once it ran
    `HEALTHY_SECONDS`), logs every exit, and stops it (SIGTERM, then SIGKILL) with `stop`."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.command = command
        self.env = env
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="nocert-supervisor", daemon=True)
        self._die_with_parent = _death_signal()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            # Its own session: a terminal's Ctrl-C reaches serve, which stops it (`stop`), not both at once.
            self._process = subprocess.Popen(self.command, env=self.env, start_new_session=True, preexec_fn=self._die_with_parent)
            logger.info("background process started (pid %d)", self._process.pid)
            return self._process

    def _run(self) -> None:
        backoff = RESTART_MIN_SECONDS
        while True:
            process = self._spawn()
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                logger.info("background process (pid %d) stopped with exit status %d", process.pid, code)
                return
            if time.monotonic() - started >= HEALTHY_SECONDS:
                backoff = RESTART_MIN_SECONDS
            logger.error("background process (pid %d) exited with status %d; restarting in %.1f s", process.pid, code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, RESTART_MAX_SECONDS)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                logger.error("background process (pid %d) did not stop within %.0f s: killed", process.pid, STOP_SECONDS)
                process.kill()
                process.wait()
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_SECONDS)


def _death_signal() -> Callable[[], object] | None:
    """What the child runs before exec: SIGKILL when serve dies without stopping it (itself killed: the node
    died), Linux's PR_SET_PDEATHSIG (tied to the supervisor's thread, which outlives the child). Looked up
    here, in serve: the child of a threaded process must import nothing between fork and exec."""
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)
