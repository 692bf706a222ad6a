"""What the reliability tests share: a real ``nocert serve`` process, a small province built over HTTP,
a lifecycle load that records every acknowledged command, and the checks run after a fault.

The server is the installed console script (``nocert serve --workers 1``) on a free 127.0.0.1 port with
its stdout and stderr in files, so a test can kill it with SIGKILL, restart it on the same store and
read everything it logged.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.bootstrap import Services, build
from api.settings import Settings
from domain.identifiers import make_uscc
from projections.schema import VIEW_TABLES
from tests.bodies import CATEGORY, check_body

NOCERT = str(Path(sys.executable).with_name("nocert"))
ADMIN_KEY = "admin-" + "r" * 40

#: The event type each command records (API.md §4).
EVENT_OF_COMMAND = {
    "raise": "Raised",
    "accept": "Accepted",
    "request-info": "InfoRequested",
    "supply-info": "InfoSupplied",
    "forward": "Forwarded",
    "reply": "Replied",
    "decline": "Declined",
    "withdraw": "Withdrawn",
    "close": "Closed",
}

_USCC_SERIAL = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, key_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server (and of the CLI) on that store; no NOCERT_* leaks in from outside."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOCERT_")}
    env.update(
        NOCERT_DATABASE_URL=database_url,
        NOCERT_KEY_DIR=str(key_dir),
        NOCERT_ADMIN_KEY=ADMIN_KEY,
        NOCERT_CHECKPOINT_EVERY="25",
        NOCERT_DB_POOL_SIZE="5",  # PostgreSQL is shared with other test runs (max_connections 100)
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Server:
    """``nocert serve --workers 1`` in its own process group; output appended to ``stdout.log`` and
    ``stderr.log`` in ``workdir`` across restarts."""

    def __init__(self, workdir: Path, env: dict[str, str], workers: int = 1) -> None:
        self.workdir = workdir
        self.env = env
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                [NOCERT, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nocert serve exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"nocert serve did not answer /healthz within {timeout} s:\n{self.logs()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL to the whole process group: no shutdown code of the server runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        """A graceful stop (SIGTERM), SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def logs(self) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


def run_cli(env: dict[str, str], *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NOCERT, *args], env=env, capture_output=True, text=True, timeout=timeout)


# -- a province over HTTP ------------------------------------------------------------------------


@dataclass
class Province:
    """Departments and a category created through the API; ``keys`` by role name."""

    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    @classmethod
    def create(cls, client: httpx.Client) -> Province:
        province = cls(keys={"admin": ADMIN_KEY}, ids={"admin": "admin"})
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        for name, dept_id, roles, kind, region, display in (
            ("approver", "fz-estate", ["approver"], "real-estate", "350102", "福州市不动产登记中心"),
            ("gulou", "fz-gulou-police", ["issuer"], "police", "350102", "福州市公安局鼓楼分局"),
            ("city", "fz-police", ["issuer"], "police", "350100", "福州市公安局"),
            ("auditor", "fj-audit", ["auditor"], "audit", "350000", "福建省审计厅"),
            ("stranger", "xm-estate", ["approver"], "real-estate", "350200", "厦门市不动产登记中心"),
        ):
            body = {
                "id": dept_id,
                "name": display,
                "uscc": make_uscc(f"11350100MC{next(_USCC_SERIAL):07d}"),
                "roles": roles,
                "kind": kind,
                "region": region,
            }
            response = client.post("/v1/departments", json=body, headers=admin)
            assert response.status_code == 201, response.text
            province.keys[name] = response.json()["api_key"]
            province.ids[name] = dept_id
        category = {
            "code": CATEGORY,
            "name": "户籍证明",
            "issuer_kind": "police",
            "modes": ["collaboration", "commitment"],
            "sla_hours": 24,
        }
        response = client.post("/v1/categories", json=category, headers=admin)
        assert response.status_code == 201, response.text
        return province


# -- lifecycle load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """A command the service answered 2xx: what the client was told."""

    check_id: str
    command: str
    position: int
    status: str
    version: int
    answered: float = 0.0  # time.monotonic() when the answer came

    @classmethod
    def of(cls, command: str, response: httpx.Response) -> Ack:
        """What a 2xx answer to a lifecycle command told the client, now."""
        document = response.json()
        position = int(response.headers["x-event-position"])
        return cls(document["id"], command, position, document["status"], document["version"], time.monotonic())


@dataclass(frozen=True)
class Failure:
    """A command that got no 2xx: the HTTP status (0: no answer at all), problem code and latency."""

    command: str
    status: int
    code: str | None
    seconds: float
    at: float


#: The lives a check is taken through, in turn (every command of the status machine but forward).
LIVES: tuple[tuple[tuple[str, str, dict[str, Any]], ...], ...] = (
    (
        ("accept", "gulou", {}),
        ("reply", "gulou", {"conclusion": "confirmed", "statements": {"same_person": True}}),
        ("close", "approver", {"outcome": "exempted"}),
    ),
    (
        ("accept", "gulou", {}),
        ("request-info", "gulou", {"question": "请补充户籍地址"}),
        ("supply-info", "approver", {"answer": "福州市鼓楼区某路1号"}),
        ("decline", "gulou", {"reason_code": "no_record", "note": "查无此人"}),
        ("close", "approver", {"outcome": "applicant_submitted"}),
    ),
    (("withdraw", "approver", {"reason": "申请人撤回"}),),
    (
        ("reply", "gulou", {"conclusion": "not_confirmed", "statements": {}}),
        ("close", "approver", {"outcome": "commitment"}),
    ),
    (("accept", "gulou", {}),),  # left open
)


def command_path(command: str, check_id: str | None) -> str:
    """Where a lifecycle command is posted: ``raise`` creates the check, the others act on ``check_id``."""
    return "/v1/checks" if command == "raise" else f"/v1/checks/{check_id}/{command}"


#: Sends one command of a check's life (command, who, check id, body); the check's id, None to stop.
Send = Callable[[str, str, str | None, dict[str, Any]], str | None]


class LifecycleLoad:
    """Client threads taking checks through their lives, every command with an ``Idempotency-Key``.

    A command that gets no 2xx is retried with the same key (``retry=True``) until it is answered or
    the load stops; ``acks`` holds every 2xx, ``failures`` every other outcome, ``in_flight`` the
    commands whose answer never came when the load stopped (the server was killed under them).
    """

    def __init__(self, base_url: str, province: Province, threads: int = 3, *, retry: bool = False,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.province = province
        self.threads = threads
        self.retry = retry
        self.timeout = timeout
        self.stop_event = threading.Event()
        self.acks: list[Ack] = []
        self.failures: list[Failure] = []
        self.in_flight: list[tuple[str, str, str | None, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), name=f"load-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float = 60.0) -> None:
        self.stop_event.set()
        for worker in self._workers:
            worker.join(timeout)
        assert not any(worker.is_alive() for worker in self._workers), "load threads did not stop"
        assert not self.errors, f"load threads failed: {self.errors!r}"

    def ack_count(self) -> int:
        with self._lock:
            return len(self.acks)

    def run_for(self, seconds: float, min_acks: int, limit: float) -> None:
        """Starts the load; returns once it has run ``seconds`` and ``min_acks`` commands were answered 2xx,
        failing if that takes more than ``limit`` seconds."""
        self.start()
        started = time.monotonic()
        while time.monotonic() - started < seconds or self.ack_count() < min_acks:
            assert time.monotonic() - started < limit, f"only {self.ack_count()} commands answered in {limit:g} s"
            time.sleep(0.05)

    def resend(self, client: httpx.Client) -> Iterator[tuple[str, httpx.Response]]:
        """Sends every command left unanswered (``in_flight``) again with its Idempotency-Key, through
        ``client``: each command's name and the answer."""
        for command, who, check_id, key, body in self.in_flight:
            headers = self.province.headers(who, **{"Idempotency-Key": key})
            yield command, client.post(command_path(command, check_id), json=body, headers=headers)

    def _lives(self, index: int, send: Send) -> None:
        """Takes checks through ``LIVES`` in turn from ``index`` until the load stops or ``send`` gives up."""
        for serial in itertools.count():
            if self.stop_event.is_set():
                return
            life = LIVES[(index + serial) % len(LIVES)]
            check_id = send("raise", "approver", None, check_body())
            if check_id is None:
                return
            for command, who, body in life:
                if send(command, who, check_id, body) is None:
                    return

    def _run(self, index: int) -> None:
        try:
            with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
                self._lives(index, lambda *command: self._command(client, *command))
        except BaseException as error:  # surfaced by stop()
            self.errors.append(error)

    def _command(
        self, client: httpx.Client, command: str, who: str, check_id: str | None, body: dict[str, Any]
    ) -> str | None:
        """Sends the command until answered 2xx (or once, without retry); the check's id, None to stop."""
        path = command_path(command, check_id)
        key = uuid.uuid4().hex
        unanswered = False
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                response = client.post(path, json=body, headers=self.province.headers(who, **{"Idempotency-Key": key}))
            except httpx.HTTPError:
                seconds = time.monotonic() - started
                unanswered = True
                with self._lock:
                    self.failures.append(Failure(command, 0, None, seconds, started))
                if not self.retry:
                    break
                time.sleep(0.2)
                continue
            unanswered = False
            seconds = time.monotonic() - started
            if response.is_success:
                ack = Ack.of(command, response)
                with self._lock:
                    self.acks.append(ack)
                return ack.check_id
            code = _problem_code(response)
            with self._lock:
                self.failures.append(Failure(command, response.status_code, code, seconds, started))
            retryable = response.status_code >= 500 or code == "idempotency_in_progress"
            if not retryable or not self.retry:
                raise AssertionError(f"{command} answered {response.status_code}: {response.text[:500]}")
            time.sleep(0.2)
        if unanswered:
            with self._lock:
                self.in_flight.append((command, who, check_id, key, body))
        return None


def _problem_code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


# -- after a fault -------------------------------------------------------------------------------


@dataclass
class AckReport:
    acknowledged: int
    checks: int
    lost: list[str]


def verify_acks(client: httpx.Client, province: Province, acks: list[Ack]) -> AckReport:
    """Every acknowledged command is in the store: the check's history has, at the acknowledged version,
    the command's event at the acknowledged position; the check is at least at that version, and in the
    acknowledged status when nothing came after it."""
    lost: list[str] = []
    by_check: dict[str, list[Ack]] = {}
    for ack in acks:
        by_check.setdefault(ack.check_id, []).append(ack)
    approver = province.headers("approver")
    for check_id, check_acks in by_check.items():
        response = client.get(f"/v1/checks/{check_id}/history", headers=approver)
        if response.status_code != 200:
            lost += [f"{ack}: history answered {response.status_code}" for ack in check_acks]
            continue
        events = response.json()["events"]
        by_version = {event["version"]: event for event in events}
        for ack in check_acks:
            event = by_version.get(ack.version)
            if event is None or event["position"] != ack.position or event["type"] != EVENT_OF_COMMAND[ack.command]:
                lost.append(f"{ack}: the store has {event}")
        check = client.get(f"/v1/checks/{check_id}", headers=approver).json()
        last = max(check_acks, key=lambda ack: ack.version)
        if check["version"] < last.version or (check["version"] == last.version and check["status"] != last.status):
            lost.append(f"{last}: the check is now version {check['version']} status {check['status']}")
    return AckReport(len(acks), len(by_check), lost)


def open_services(database_url: str, key_dir: Path) -> Services:
    """Services on the store, for reading it from the test process (no follower started)."""
    return build(
        Settings(database_url=database_url, key_dir=key_dir, admin_key=ADMIN_KEY, checkpoint_every=25, db_pool_size=4)
    )


def dump_views(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table and the tracking positions, in a canonical order."""
    dumped: dict[str, list[tuple[Any, ...]]] = {}
    with services.database.reading() as cursor:  # type: ignore[attr-defined]
        for table in (*VIEW_TABLES, "view_tracking"):
            rows = cursor.execute(f"SELECT * FROM {table}").fetchall()
            dumped[table] = sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows), key=repr)
    return dumped


def wait_views_caught_up(services: Services, timeout: float = 60.0, *, checkpointed: bool = False) -> int:
    """Waits until every view reflects the whole log (a live server's follower does the work) and, with
    ``checkpointed``, until a signed checkpoint covers every leaf: the live server signs one within 10 s of
    an uncovered leaf (API.md §7), so only then is the ledger settled and comparable with a rebuild."""
    deadline = time.monotonic() + timeout
    while True:
        head = services.log.max_position()
        caught_up = services.views.position() >= head
        if caught_up and checkpointed:
            latest = services.views.latest_checkpoint()
            caught_up = latest is not None and latest["tree_size"] == services.views.ledger_size()
        if caught_up:
            return head
        assert time.monotonic() < deadline, (
            f"views at {services.views.position()} of {head}, latest checkpoint {services.views.latest_checkpoint()}"
        )
        time.sleep(0.1)


def diff_views(live: dict[str, list[tuple[Any, ...]]], rebuilt: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    differences = []
    for table in live:
        if live[table] != rebuilt[table]:
            only_live = [row for row in live[table] if row not in rebuilt[table]][:3]
            only_rebuilt = [row for row in rebuilt[table] if row not in live[table]][:3]
            differences.append(
                f"{table}: {len(live[table])} live rows vs {len(rebuilt[table])} rebuilt;"
                f" live only {only_live!r}; rebuilt only {only_rebuilt!r}"
            )
    return differences


@dataclass
class Convergence:
    head: int
    view_rows: int
    latest_checkpoint: int | None
    differences: list[str]
    audit: dict[str, Any] = field(default_factory=dict)


def converge_and_rebuild(database_url: str, key_dir: Path, env: dict[str, str]) -> Convergence:
    """Waits until the live views reflect the whole log, dumps every view table, runs ``nocert views
    rebuild`` (while the service runs) and dumps again: the differences, if any; and the verdict of
    ``nocert audit verify --json`` (ledger recomputed from the store against every signed checkpoint)."""
    services = open_services(database_url, key_dir)
    try:
        head = wait_views_caught_up(services, checkpointed=True)
        live = dump_views(services)
        rebuild = run_cli(env, "views", "rebuild")
        assert rebuild.returncode == 0, rebuild.stderr[-3000:]
        rebuilt = dump_views(services)
        checkpoint = services.views.latest_checkpoint()
        audit = run_cli(env, "audit", "verify", "--json")
        try:
            verdict = json.loads(audit.stdout)
        except ValueError:
            verdict = {"ok": False, "problems": [{"kind": "no JSON", "detail": (audit.stdout + audit.stderr)[-2000:]}]}
        return Convergence(
            head,
            sum(len(rows) for rows in live.values()),
            checkpoint["tree_size"] if checkpoint else None,
            diff_views(live, rebuilt),
            verdict,
        )
    finally:
        services.close()


def wait_for_head(database_url: str, key_dir: Path, timeout: float = 60.0) -> int:
    """The log's head once the views have caught up with it."""
    services = open_services(database_url, key_dir)
    try:
        return wait_views_caught_up(services, timeout)
    finally:
        services.close()
