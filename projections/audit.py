"""``nocert audit verify`` (API.md §8): the event store checked against the ledger, its signed checkpoints,
every sealed proof and the §4 status machine. It only reads, so it may run while the service runs.

One pass over the log in position order, up to the position the log had when the audit started:

* every leaf is recomputed from the stored bytes (`projections.ledger.leaf_bytes`) and appended to a
  Merkle frontier; the leaf is compared with the ledger view's (``ledger_leaves``), matched by position;
* when the frontier reaches a checkpoint's tree size, the checkpoint's JWS is verified against the root,
  its payload against its row, and its root against the recomputed one;
* every event is decoded with the application's mapper and its stream checked: versions 1, 2, 3...,
  one aggregate per stream, and for checks every event allowed from the status reached so far;
* every ``Replied`` proof is verified as of its issue (in worker processes when there are many).

Problems carry a stable ``kind`` (`KINDS`) and the global position they concern (None when none applies).
"""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, NamedTuple
from uuid import UUID

from cryptography import x509
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from domain.check import TRANSITIONS
from domain.department import Department
from store.database import Database
from store.eventlog import EventLog
from projections.ledger import canonical_leaf
from signing import certificates, merkle
from signing.checkpoints import InvalidCheckpoint, verify_checkpoint
from signing.proofs import DepartmentTrust, Trust, verify_proof
from signing.timefmt import format_time, parse_time

KINDS = (
    "leaf_mismatch",
    "checkpoint_mismatch",
    "checkpoint_signature",
    "undecodable_event",
    "invalid_transition",
    "version_gap",
    "proof_invalid",
    "position_order",
)
"""Every problem kind `verify_ledger` reports (stable strings of the command's output)."""

INTEGRITY_REASONS = frozenset(
    {
        "malformed",
        "bad_signature",
        "untrusted_certificate",
        "kid_mismatch",
        "issuer_mismatch",
        "unknown_issuer",
        "certificate_expired",
    }
)
"""Proof verdicts that mean the proof is not what was sealed. Expiry, and revocation of the proof or its
key after the fact, are the proof's later life, not a fault of the record."""

PAGE_SIZE = 1000
PROOF_CHUNK = 200  # proofs per task of a worker process
PARALLEL_FROM = 1000  # fewer proofs in all are verified in this process: starting workers costs about 1 s
MAX_PENDING_CHUNKS = 64  # chunks sent and not yet verified before the scan waits for the workers
CHECK_PREFIX = "nocert:check:"

Progress = Callable[[int, int], None]
"""``progress(done, total)``: events scanned so far and the log's size when the audit started."""


@dataclass(frozen=True)
class Problem:
    position: int | None
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}

    def line(self) -> str:
        return f"position {self.position if self.position is not None else '-'}: {self.kind}: {self.detail}"


@dataclass
class AuditReport:
    events: int = 0
    checkpoints: int = 0
    proofs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "proofs": self.proofs,
            "problems": [problem.to_dict() for problem in self.problems],
        }

    def summary(self) -> str:
        counted = f"{self.events} events, {self.checkpoints} checkpoints, {self.proofs} proofs"
        if self.ok:
            return f"audit: OK: {counted} checked, no problem found"
        return f"audit: FAILED: {counted} checked, {len(self.problems)} problem(s)"


def verify_ledger(
    app: Any,
    database: Database,
    log: EventLog,
    root_cert: x509.Certificate,
    *,
    trust: Trust | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    page_size: int = PAGE_SIZE,
) -> AuditReport:
    """Audits the whole event store of `app` (a `domain.platform.Platform`); see the module's docstring.

    `trust`: the platform's record of departments (`api.trust.PlatformTrust`); without it, a department is
    known once the log registers it. `workers`: processes verifying proofs (default one per core; 1
    verifies in this process)."""
    return _Audit(app, database, log, root_cert, trust, progress, workers, page_size).run()


# -- the ledger view ----------------------------------------------------------------------------


def _table_exists(database: Database, table: str) -> bool:
    with database.reading() as cursor:  # type: ignore[attr-defined]
        if database.dialect == "sqlite":
            row = cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        else:
            row = cursor.execute("SELECT to_regclass(?)", (table,)).fetchone()
            row = row if row and row[0] is not None else None
    return row is not None


@dataclass(frozen=True)
class _ViewLeaf:
    index: int
    position: int
    stream_id: str
    version: int
    type: str
    state_sha256: str
    leaf_hash: bytes

    @classmethod
    def of(cls, row: Sequence[Any]) -> _ViewLeaf:
        idx, position, stream_id, version, topic, state_sha256, digest = row
        return cls(int(idx), int(position), str(stream_id), int(version), topic, state_sha256, bytes(digest))


_ViewRow = tuple[int, int, str, int, str, str, bytes]
"""A row of ``ledger_leaves`` as `_view_leaves` reads it: idx, position, stream_id, version, type,
state_sha256, leaf_hash (made a `_ViewLeaf` only when the audit reports it)."""


def _view_leaves(database: Database, stop: int, page_size: int) -> Iterator[_ViewRow]:
    """The ledger view's leaves with position <= stop, in position order, a page per read.

    The query has no upper bound: with both bounds and no statistics yet (a freshly rebuilt view),
    PostgreSQL fetched every leaf up to `stop` and sorted them for each page (about 50 ms a page instead of
    0.5), so leaves past `stop` are left out here."""
    after = 0
    while True:
        with database.reading() as cursor:  # type: ignore[attr-defined]
            rows = cursor.execute(
                "SELECT idx, position, stream_id, version, type, state_sha256, leaf_hash FROM ledger_leaves "
                "WHERE position > ? ORDER BY position LIMIT ?",
                (after, page_size),
            ).fetchall()
        if rows and int(rows[-1][1]) > stop:
            yield from (row for row in rows if int(row[1]) <= stop)
            return
        yield from rows
        if len(rows) < page_size:
            return
        after = int(rows[-1][1])


@dataclass(frozen=True)
class _Checkpoint:
    tree_size: int
    root_hash: str
    issued_at: str
    jws: str


def _checkpoints(database: Database) -> list[_Checkpoint]:
    with database.reading() as cursor:  # type: ignore[attr-defined]
        rows = cursor.execute(
            "SELECT tree_size, root_hash, issued_at, jws FROM ledger_checkpoints ORDER BY tree_size"
        ).fetchall()
    return [_Checkpoint(int(size), root, issued_at, text) for size, root, issued_at, text in rows]


# -- streams and the status machine ------------------------------------------------------------


class _Stream:
    """What the audit remembers of one stream while it scans the log."""

    __slots__ = (
        "version", "aggregate", "status", "known", "approver", "issuer", "sealer", "conclusion", "replied", "revoked",
        "valid_until",
    )

    def __init__(self, aggregate: str) -> None:
        self.version = 0
        self.aggregate = aggregate
        self.status: str | None = None
        self.known = True  # False once an event could not be decoded: facts after it cannot be judged
        self.approver: str | None = None
        self.issuer: str | None = None
        self.sealer: str | None = None
        self.conclusion: str | None = None
        self.replied = False
        self.revoked = False
        self.valid_until: datetime | None = None


@functools.lru_cache(maxsize=1024)
def _aggregate_of(topic: str) -> str:
    """``nocert:check:Raised`` → ``nocert:check``: the aggregate a topic belongs to (remembered: a log has
    a few dozen topics)."""
    return topic.rpartition(":")[0] if topic.count(":") >= 2 else topic


_FIELDS: dict[type, frozenset[str]] = {}


def _fields_of(cls: type) -> frozenset[str]:
    """The attributes an event of this class carries: every annotation along its MRO."""
    if cls not in _FIELDS:
        names: set[str] = set()
        for klass in reversed(cls.__mro__):
            for name, annotation in klass.__dict__.get("__annotations__", {}).items():
                if "ClassVar" not in str(annotation):
                    names.add(name)
        _FIELDS[cls] = frozenset(names)
    return _FIELDS[cls]


# -- proofs -----------------------------------------------------------------------------------


class _ProofItem(NamedTuple):
    """A proof to verify and what its Replied event says it is (a tuple: cheap to send to a worker)."""

    position: int
    jws: str
    check_id: str
    proof_id: str
    kid: str
    issuer: str
    conclusion: str
    issued_at: datetime


class _KnownDepartments:
    """`signing.proofs.Trust` over a snapshot of `api.trust.PlatformTrust`'s departments, to send to workers.
    Revocations are not consulted: the audit ignores `key_revoked` and `proof_revoked`."""

    def __init__(self, departments: dict[str, DepartmentTrust]) -> None:
        self.departments = departments

    def department(self, department_id: str) -> DepartmentTrust | None:
        return self.departments.get(department_id)

    def proof_revoked(self, payload: dict[str, Any]) -> bool:
        return False


def _verify_proofs(root_pem: bytes, departments: dict[str, DepartmentTrust], items: Sequence[_ProofItem]) -> list[Problem]:
    """Worker task: each proof judged as of its issue; only integrity failures become problems."""
    root = certificates.load_pem(root_pem)
    trust = _KnownDepartments(departments)
    problems = []
    for item in items:
        # As of its issue. (Only expiry depends on this time, and expiry is ignored: certificate validity
        # and key revocation are judged at the signed issued_at whatever it is.)
        issued_at = item.issued_at if isinstance(item.issued_at, datetime) else datetime.now(UTC)
        verdict = verify_proof(item.jws, root, trust, issued_at)
        reasons = [reason for reason in verdict.reasons if reason in INTEGRITY_REASONS]
        label = f"proof {item.proof_id} of check {item.check_id}"
        if reasons:
            problems.append(Problem(item.position, "proof_invalid", f"{label}: {', '.join(reasons)}"))
        if verdict.payload is not None:
            differ = _proof_differences(item, verdict.payload, verdict.kid)
            if differ:
                problems.append(
                    Problem(item.position, "proof_invalid", f"{label}: the sealed proof's {', '.join(differ)} differ from its Replied event")
                )
    return problems


def _proof_differences(item: _ProofItem, payload: dict[str, Any], kid: str | None) -> list[str]:
    issuer = payload.get("issuer")
    try:
        issued_at = parse_time(payload.get("issued_at"))
    except ValueError:
        issued_at = None
    checks = {
        "check_id": payload.get("check_id") == item.check_id,
        "id": payload.get("id") == item.proof_id,
        "kid": kid == item.kid,
        "issuer": isinstance(issuer, dict) and issuer.get("id") == item.issuer,
        "conclusion": payload.get("conclusion") == item.conclusion,
        "issued_at": issued_at == item.issued_at,
    }
    return [name for name, same in checks.items() if not same]


class _ProofVerifier:
    """Verifies proofs as the scan finds them: in chunks in worker processes once `PARALLEL_FROM` proofs
    have been found, else all in this process at the end. The scan only waits for the workers when
    `MAX_PENDING_CHUNKS` chunks are outstanding, so verifying overlaps the scan instead of following it."""

    def __init__(self, root_cert: x509.Certificate, workers: int | None) -> None:
        self.root_pem = certificates.to_pem(root_cert).encode("ascii")
        self.workers = workers or os.cpu_count() or 1
        self.departments: dict[str, DepartmentTrust] = {}
        self.count = 0
        self.problems: list[Problem] = []
        self._buffer: list[_ProofItem] = []
        self._pending: deque[concurrent.futures.Future[list[Problem]]] = deque()
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def add(self, item: _ProofItem) -> None:
        self.count += 1
        self._buffer.append(item)
        if self.workers > 1 and len(self._buffer) >= (PROOF_CHUNK if self._executor else max(PARALLEL_FROM, PROOF_CHUNK)):
            while self._buffer:
                self._submit()

    def _submit(self) -> None:
        """Sends the next chunk of the buffer to a worker."""
        if self._executor is None:
            # Workers forked from a clean server process (not from this one, whose threads may hold locks),
            # preloaded with this module instead of re-running the caller's main script.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._executor = concurrent.futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        chunk, self._buffer = self._buffer[:PROOF_CHUNK], self._buffer[PROOF_CHUNK:]
        self._pending.append(self._executor.submit(_verify_proofs, self.root_pem, dict(self.departments), chunk))
        while self._pending and (self._pending[0].done() or len(self._pending) > MAX_PENDING_CHUNKS):
            self.problems.extend(self._pending.popleft().result())  # bounds what waits in memory

    def finish(self) -> list[Problem]:
        """Every problem found, once every proof is verified."""
        try:
            if self._buffer:
                if self._executor is not None:
                    while self._buffer:
                        self._submit()
                else:
                    self.problems.extend(_verify_proofs(self.root_pem, self.departments, self._buffer))
                    self._buffer = []
            while self._pending:
                self.problems.extend(self._pending.popleft().result())
        finally:
            self.close()
        return self.problems

    def close(self) -> None:
        """Stops the worker processes, if any were started (pending work is dropped)."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None


# -- the audit --------------------------------------------------------------------------------


class _Audit:
    def __init__(
        self,
        app: Any,
        database: Database,
        log: EventLog,
        root_cert: x509.Certificate,
        trust: Trust | None,
        progress: Progress | None,
        workers: int | None,
        page_size: int,
    ) -> None:
        self.app = app
        self.database = database
        self.log = log
        self.root_cert = root_cert
        self.progress = progress
        self.page_size = page_size
        self.report = AuditReport()
        self.problems: list[Problem] = []
        self.frontier = merkle.Frontier()
        self.streams: dict[str, _Stream] = {}
        self.proofs = _ProofVerifier(root_cert, workers)
        self.last_position = 0
        # The first leaf index (and its position) at which the event store and the ledger view part ways.
        self.divergence: tuple[int, int] | None = None
        self._view: Iterator[_ViewRow] = iter(())
        self._head: _ViewRow | None = None
        self._mismatch_run: list[Any] | None = None  # [problem index, first position, last position, count]
        self._all_checkpoints: list[_Checkpoint] = []
        self._failed_checkpoints: list[tuple[_Checkpoint, str, str | None]] = []
        self.trust = trust

    def problem(self, position: int | None, kind: str, detail: str) -> None:
        self.problems.append(Problem(position, kind, detail))

    def diverge(self, index: int, position: int) -> None:
        if self.divergence is None or index < self.divergence[0]:
            self.divergence = (index, position)

    # -- the pass ---------------------------------------------------------------------------

    def run(self) -> AuditReport:
        try:
            return self._run()
        finally:
            self.proofs.close()

    def _run(self) -> AuditReport:
        has_ledger = _table_exists(self.database, "ledger_checkpoints")
        # Checkpoints first, then the log's end: every checkpoint read covers only events up to `stop`.
        checkpoints = _checkpoints(self.database) if has_ledger else []
        stop = self.log.max_position()
        if has_ledger and _table_exists(self.database, "ledger_leaves"):
            self._view = _view_leaves(self.database, stop, self.page_size)
        self._advance_view()
        self.report.checkpoints = len(checkpoints)
        self._all_checkpoints = checkpoints
        pending = deque(checkpoints)
        while pending and pending[0].tree_size <= 0:
            self._check_checkpoint(pending.popleft(), None)
        if self.progress is not None:
            self.progress(0, stop)
        after = 0
        while after < stop:
            page = self.log.read(after, self.page_size, stop=stop)
            if not page:
                break
            for notification in page:
                self._event(notification)
                while pending and pending[0].tree_size == self.frontier.size:
                    self._check_checkpoint(pending.popleft(), notification.id)
            after = page[-1].id
            if self.progress is not None:
                self.progress(self.report.events, stop)
        self._close_mismatch_run()
        while self._head is not None:  # leaves of the view for which the store has no event any more
            self._missing(_ViewLeaf.of(self._head))
            self._advance_view()
        self._view_beyond(stop)
        for checkpoint in pending:  # checkpoints over more leaves than the store has events
            self._check_checkpoint(checkpoint, None)
        self._report_checkpoint_mismatches()
        self.problems.extend(self.proofs.finish())
        self.report.proofs = self.proofs.count
        # Problems in log order; those without a position (whole-ledger ones) last, in the order found.
        self.report.problems = sorted(
            self.problems, key=lambda problem: (problem.position is None, problem.position or 0)
        )
        return self.report

    def _event(self, notification: Notification) -> None:
        index = self.report.events
        self.report.events = index + 1
        position = notification.id
        if position <= self.last_position:
            self.problem(position, "position_order", f"the event store returned position {position} after {self.last_position}")
        else:
            self.last_position = position
        stream_id = str(notification.originator_id)
        state_sha256 = sha256(notification.state).hexdigest()
        # The leaf as `projections.ledger.leaf_bytes` makes it, from the values computed once here.
        digest = merkle.leaf_hash(
            canonical_leaf(position, stream_id, notification.originator_version, notification.topic, state_sha256)
        )
        self.frontier.append(digest)
        head = self._head
        if head is not None and head[1] == position and head[6] == digest and head[0] == index:
            self._head = next(self._view, None)  # the view's leaf at this position is this one: nothing to say
            if self._mismatch_run is not None:
                self._close_mismatch_run()
        else:
            self._compare_with_view(index, notification, stream_id, state_sha256, digest)
        event = self._decode(notification)
        self._stream(notification, stream_id, event)

    # -- comparison with the ledger view ----------------------------------------------------------

    def _advance_view(self) -> None:
        self._head = next(self._view, None)

    def _missing(self, leaf: _ViewLeaf) -> None:
        self._close_mismatch_run()
        self.problem(
            leaf.position,
            "position_order",
            f"the ledger view holds leaf {leaf.index} (stream {leaf.stream_id} version {leaf.version}, {leaf.type}) "
            "at this position, but the event store has no event here: it was removed",
        )
        self.diverge(leaf.index, leaf.position)

    def _compare_with_view(
        self, index: int, notification: Notification, stream_id: str, state_sha256: str, digest: bytes
    ) -> None:
        position = notification.id
        while self._head is not None and int(self._head[1]) < position:
            self._missing(_ViewLeaf.of(self._head))
            self._advance_view()
        leaf = _ViewLeaf.of(self._head) if self._head is not None else None
        version = notification.originator_version
        if leaf is None or leaf.position > position:
            if leaf is not None:  # the view has moved past this position, so it should hold it
                self._close_mismatch_run()
                self.problem(
                    position,
                    "position_order",
                    f"event {stream_id} version {version} ({notification.topic}) has no leaf in the ledger view: "
                    "it was inserted after the ledger recorded this part of the log",
                )
                self.diverge(index, position)
            return
        self._advance_view()
        if leaf.leaf_hash == digest and leaf.index == index:
            self._close_mismatch_run()
            return
        if leaf.leaf_hash == digest:
            self._close_mismatch_run()
            if self.divergence is None:  # not the echo of a removal or insertion found before
                self.problem(position, "position_order", f"the ledger view gives this event leaf index {leaf.index}, the log's order {index}")
            self.diverge(index, position)
            return
        self.diverge(index, position)
        if (leaf.stream_id, leaf.version) == (stream_id, version):
            self._close_mismatch_run()
            differ = []
            if leaf.type != notification.topic:
                differ.append(f"type {leaf.type} became {notification.topic}")
            if leaf.state_sha256 != state_sha256:
                differ.append(f"stored state hashed {leaf.state_sha256}, now {state_sha256}")
            self.problem(
                position,
                "leaf_mismatch",
                f"event {stream_id} version {version}: leaf {bytes(digest).hex()} differs from the ledger's "
                f"{leaf.leaf_hash.hex()}: " + ("; ".join(differ) or "the leaf hash stored in the view differs"),
            )
            return
        if self._mismatch_run is None:
            moved_to = self._store_position(leaf.stream_id, leaf.version)
            if moved_to is None:  # the event recorded here is nowhere else: this row was altered in place
                self.problem(
                    position,
                    "leaf_mismatch",
                    f"the ledger recorded {leaf.stream_id} version {leaf.version} ({leaf.type}) at this position, "
                    f"the row now says {stream_id} version {version} ({notification.topic}); leaf "
                    f"{bytes(digest).hex()} differs from the ledger's {leaf.leaf_hash.hex()}",
                )
                return
            # Another event sits here, and the one recorded here sits elsewhere: events were inserted, removed
            # or reordered. One problem names the first position of a run of such positions.
            self.problem(
                position,
                "position_order",
                f"the ledger recorded {leaf.stream_id} version {leaf.version} ({leaf.type}) at this position, "
                f"the event store now has {stream_id} version {version} ({notification.topic}) here and the "
                f"recorded event at position {moved_to}",
            )
            self._mismatch_run = [len(self.problems) - 1, position, position, 1]
        else:
            self._mismatch_run[2] = position
            self._mismatch_run[3] += 1

    def _store_position(self, stream_id: str, version: int) -> int | None:
        """Where the event store holds this stream's version now, if anywhere."""
        try:
            return self.log.stream_positions(UUID(stream_id)).get(version)
        except ValueError:
            return None

    def _close_mismatch_run(self) -> None:
        run, self._mismatch_run = self._mismatch_run, None
        if run is None or run[3] == 1:
            return
        at, first, last, count = run
        problem = self.problems[at]
        self.problems[at] = Problem(
            problem.position,
            problem.kind,
            f"{problem.detail}; the same holds at each of the {count} positions {first}..{last}: events were "
            "inserted, removed or reordered",
        )

    def _view_beyond(self, stop: int) -> None:
        """Leaves the view holds past `stop` (it may run ahead of the audit) must still have their events."""
        if not _table_exists(self.database, "ledger_leaves"):
            return
        after = stop
        while True:
            with self.database.reading() as cursor:  # type: ignore[attr-defined]
                rows = cursor.execute(
                    "SELECT idx, position, stream_id, version, type FROM ledger_leaves WHERE position > ? "
                    "ORDER BY position LIMIT ?",
                    (after, self.page_size),
                ).fetchall()
            if not rows:
                return
            last = int(rows[-1][1])
            present = {n.id for n in self.log.read(after, self.page_size * 2, stop=last)}
            for idx, position, stream_id, version, topic in rows:
                if int(position) not in present:
                    self._missing(_ViewLeaf(int(idx), int(position), stream_id, int(version), topic, "", b""))
            if len(rows) < self.page_size:
                return
            after = last

    # -- checkpoints ------------------------------------------------------------------------

    def _check_checkpoint(self, checkpoint: _Checkpoint, position: int | None) -> None:
        """Checks one checkpoint; `position` is the last event it covers (None when the store has too few)."""
        label = f"checkpoint at tree size {checkpoint.tree_size} (issued {checkpoint.issued_at})"
        root_hash = checkpoint.root_hash
        try:
            payload = verify_checkpoint(checkpoint.jws, self.root_cert)
        except InvalidCheckpoint as error:
            self.problem(position, "checkpoint_signature", f"{label}: its JWS does not verify: {error}")
        else:
            row = {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash, "issued_at": checkpoint.issued_at}
            if payload != row:
                differ = ", ".join(name for name in row if payload.get(name) != row[name]) or "extra members"
                self.problem(position, "checkpoint_signature", f"{label}: its row differs from what its JWS signs ({differ})")
            root_hash = payload.get("root_hash", root_hash)
            if payload.get("tree_size") != checkpoint.tree_size:
                return  # its signed root is for another size: nothing to compare here
        if self.frontier.size != checkpoint.tree_size:
            self._failed_checkpoints.append((checkpoint, root_hash, None))
            return
        actual = self.frontier.root().hex()
        if actual != root_hash:
            self._failed_checkpoints.append((checkpoint, root_hash, actual))

    def _report_checkpoint_mismatches(self) -> None:
        """One problem for the first checkpoint whose signed root the store no longer gives (every later one
        then fails too, and is counted in it)."""
        failed = self._failed_checkpoints
        if not failed:
            return
        checkpoint, signed, actual = failed[0]
        later = f"; {len(failed) - 1} later checkpoint(s) fail as well" if len(failed) > 1 else ""
        if actual is None:
            what = f"it covers {checkpoint.tree_size} leaves but the event store has only {self.report.events} events"
        else:
            what = f"it signs root {signed}, the event store gives {actual}"
        divergence = self.divergence
        if divergence is not None and divergence[0] < checkpoint.tree_size:
            index, position = divergence
            self.problem(
                position,
                "checkpoint_mismatch",
                f"checkpoint at tree size {checkpoint.tree_size} (issued {checkpoint.issued_at}): {what}; "
                f"the first leaf that differs is leaf {index} at this position{later}",
            )
            return
        passed = [c.tree_size for c in self._passed_sizes() if c.tree_size < checkpoint.tree_size]
        since = max(passed, default=0)
        self.problem(
            None,
            "checkpoint_mismatch",
            f"checkpoint at tree size {checkpoint.tree_size} (issued {checkpoint.issued_at}): {what}; the ledger view "
            f"agrees with the event store, so the view was rebuilt from altered events: leaves {since}.."
            f"{checkpoint.tree_size - 1} changed since the checkpoint at size {since} was signed{later}",
        )

    def _passed_sizes(self) -> list[_Checkpoint]:
        failed = {id(c) for c, _, _ in self._failed_checkpoints}
        return [c for c in self._all_checkpoints if id(c) not in failed]

    # -- events and streams -------------------------------------------------------------------

    def _decode(self, notification: Notification) -> Any:
        try:
            event = self.app.mapper.to_domain_event(notification)
        except Exception as error:  # any failure to decode stored bytes is the finding itself
            self.problem(notification.id, "undecodable_event", f"{notification.topic}: {type(error).__name__}: {_first_line(error)}")
            return None
        expected = _FIELDS.get(type(event)) or _fields_of(type(event))
        if vars(event).keys() != expected:
            present = set(vars(event))
            missing, extra = sorted(expected - present), sorted(present - expected)
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])
            self.problem(notification.id, "undecodable_event", f"{notification.topic}: its state does not fit the type: {'; '.join(parts)}")
            return None
        if isinstance(event, Department.Registered):
            self._know_department(event.department_id)
        return event

    def _stream(self, notification: Notification, stream_id: str, event: Any) -> None:
        position, topic, version = notification.id, notification.topic, notification.originator_version
        aggregate = _aggregate_of(topic)
        stream = self.streams.get(stream_id)
        first = stream is None
        if stream is None:
            stream = self.streams[stream_id] = _Stream(aggregate)
            if version != 1:
                self.problem(position, "version_gap", f"stream {stream_id} starts at version {version}, not 1")
        elif version != stream.version + 1:
            if version <= stream.version:
                detail = f"stream {stream_id} has version {version} again after version {stream.version}"
            else:
                missing = f"{stream.version + 1}" if version == stream.version + 2 else f"{stream.version + 1}..{version - 1}"
                detail = f"stream {stream_id} jumps from version {stream.version} to {version}: version {missing} is missing"
            self.problem(position, "version_gap", detail)
        stream.version = max(stream.version, version)
        if aggregate != stream.aggregate:
            self.problem(position, "invalid_transition", f"stream {stream_id} of {stream.aggregate} has an event {topic}")
            return
        if event is not None and isinstance(event, Aggregate.Created) != first:
            where = "starts with" if first else "has a second creation event"
            self.problem(position, "invalid_transition", f"stream {stream_id} {where} {topic}")
        if aggregate == "nocert:check":
            self._check_step(stream, stream_id, notification, event, first)

    def _check_step(self, stream: _Stream, stream_id: str, notification: Notification, event: Any, first: bool) -> None:
        position = notification.id
        name = notification.topic.removeprefix(CHECK_PREFIX)
        label = f"check {stream_id} version {notification.originator_version}"
        if name == "Raised":
            if not first:
                self.problem(position, "invalid_transition", f"{label}: Raised again")
            stream.status = "raised"
            if event is None:
                stream.known = False
            else:
                stream.approver, stream.issuer = event.approver, event.issuer
                if event.actor != event.approver:
                    self.problem(position, "invalid_transition", f"{label}: Raised by {event.actor}, not its approver {event.approver}")
            return
        if name not in TRANSITIONS:
            self.problem(position, "invalid_transition", f"{label}: {notification.topic} is no event of a check")
            return
        party, allowed, leads_to = TRANSITIONS[name]
        if first:
            self.problem(position, "invalid_transition", f"{label}: a check starts with Raised, not {name}")
        elif stream.status not in allowed:
            self.problem(position, "invalid_transition", f"{label}: {name} is not allowed from status {stream.status}")
        if event is None:
            stream.known = False
        elif stream.known:
            self._check_event_facts(stream, label, position, name, party, event)
        elif name == "Replied":
            self._add_proof(event, position)
        if name == "Replied":
            stream.replied = True
        if leads_to is not None:
            stream.status = leads_to

    def _check_event_facts(self, stream: _Stream, label: str, position: int, name: str, party: str, event: Any) -> None:
        """The §4 rules that need the decoded event: who recorded it, and what a proof allows."""
        expected = getattr(stream, party)  # the check's issuer, approver or sealer (TRANSITIONS' parties)
        if expected is not None and event.actor != expected:
            self.problem(position, "invalid_transition", f"{label}: {name} recorded by {event.actor}, not the check's {party} {expected}")
        if name == "Forwarded":
            if event.to == stream.issuer:
                self.problem(position, "invalid_transition", f"{label}: forwarded to its current issuer {event.to}")
            stream.issuer = event.to
        elif name == "Replied":
            stream.sealer, stream.conclusion, stream.valid_until = event.actor, event.conclusion, event.valid_until
            self._add_proof(event, position)
        elif name == "ProofRevoked":
            if not stream.replied:
                self.problem(position, "invalid_transition", f"{label}: ProofRevoked on a check without a proof")
            elif stream.revoked:
                self.problem(position, "invalid_transition", f"{label}: the proof is revoked a second time")
            stream.revoked = True
        elif name == "Closed" and event.outcome == "exempted":
            if stream.status != "replied" or stream.conclusion != "confirmed":
                self.problem(position, "invalid_transition", f"{label}: closed exempted without a confirmed reply")
            elif stream.revoked:
                self.problem(position, "invalid_transition", f"{label}: closed exempted after its proof was revoked")
            elif stream.valid_until is not None and event.timestamp >= stream.valid_until:
                self.problem(position, "invalid_transition", f"{label}: closed exempted after its proof expired ({format_time(stream.valid_until)})")

    def _add_proof(self, event: Any, position: int) -> None:
        self.proofs.add(
            _ProofItem(
                position,
                event.jws,
                str(event.originator_id),
                str(event.proof_id),
                event.kid,
                event.actor,
                event.conclusion,
                event.issued_at,
            )
        )

    def _know_department(self, department_id: str) -> None:
        """Adds a department the log registers to the proofs' trust, as the platform's trust knows it (a
        proof can only name a department registered before it)."""
        record = DepartmentTrust(department_id, {}) if self.trust is None else self.trust.department(department_id)
        if record is not None:
            self.proofs.departments[department_id] = record


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""

