"""The audit's pass over the ledger: every leaf recomputed from the stored bytes (`signing.leaf`), appended
to a Merkle frontier and compared with the ledger view's leaf at its position (``ledger_leaves``), and every
signed checkpoint verified against the root and compared with the recomputed root at its tree size.

Where the log and the view part ways, one problem names the first position of a run of positions that
moved (events inserted, removed or reordered), and a checkpoint that no longer holds is reported once,
with the first leaf that differs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography import x509
from eventsourcing.persistence import Notification

from audit.report import Findings
from signing import merkle
from signing.checkpoints import InvalidCheckpoint, verify_checkpoint
from signing.leaf import leaf_bytes
from signing.rollback import TreeHead, rollback
from store.database import Database
from store.eventlog import EventLog


def _table_exists(database: Database, table: str) -> bool:
    with database.reading() as cursor:
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
        with database.reading() as cursor:
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
    with database.reading() as cursor:
        rows = cursor.execute(
            "SELECT tree_size, root_hash, issued_at, jws FROM ledger_checkpoints ORDER BY tree_size"
        ).fetchall()
    return [_Checkpoint(int(size), root, issued_at, text) for size, root, issued_at, text in rows]



class LedgerScan:
    """Recomputes the ledger leaf by leaf (`leaf`) beside the view's, and checks the checkpoints as the
    frontier reaches their sizes; `finish` reports what is left over."""

    def __init__(
        self,
        database: Database,
        log: EventLog,
        root_cert: x509.Certificate,
        findings: Findings,
        page_size: int,
        heads: Sequence[tuple[str, TreeHead]] = (),
    ) -> None:
        self.database = database
        self.log = log
        self.root_cert = root_cert
        self.findings = findings
        self.problem = findings.add
        self.page_size = page_size
        self.frontier = merkle.Frontier()
        # The first leaf index (and its position) at which the event store and the ledger view part ways.
        self.divergence: tuple[int, int] | None = None
        self._view: Iterator[_ViewRow] = iter(())
        self._head: _ViewRow | None = None
        self._mismatch_run: list[Any] | None = None  # [problem index, first position, last position, count]
        self._all_checkpoints: list[_Checkpoint] = []
        self._pending: deque[_Checkpoint] = deque()
        self._failed_checkpoints: list[tuple[_Checkpoint, str, str | None]] = []
        self._has_ledger = False
        # Tree heads signed earlier that the ledger must extend (API.md §15), each with where it comes from.
        self._heads = deque(sorted((h for h in heads if h[1].size > 0), key=lambda labelled: labelled[1].size))
        self._all_heads = list(self._heads)

    def read_checkpoints(self) -> int:
        """Reads the signed checkpoints (before the log's end is read: each then covers only events up to
        it) and checks those of no leaves; returns how many there are."""
        self._has_ledger = _table_exists(self.database, "ledger_checkpoints")
        checkpoints = _checkpoints(self.database) if self._has_ledger else []
        self._all_checkpoints = checkpoints
        self._pending = deque(checkpoints)
        while self._pending and self._pending[0].tree_size <= 0:
            self._check_checkpoint(self._pending.popleft(), None)
        return len(checkpoints)

    def open_view(self, stop: int) -> None:
        """Starts reading the view's leaves up to position `stop`."""
        if self._has_ledger and _table_exists(self.database, "ledger_leaves"):
            self._view = _view_leaves(self.database, stop, self.page_size)
        self._advance_view()

    def leaf(self, index: int, notification: Notification, stream_id: str, state_sha256: str) -> None:
        """Leaf `index` of the log, from its notification; checkpoints of this size are checked after it."""
        position = notification.id
        # The leaf as `signing.leaf.leaf_bytes` makes it, from the values computed once by the caller.
        digest = merkle.leaf_hash(
            leaf_bytes(position, stream_id, notification.originator_version, notification.topic, state_sha256)
        )
        self.frontier.append(digest)
        head = self._head
        if head is not None and head[1] == position and head[6] == digest and head[0] == index:
            self._head = next(self._view, None)  # the view's leaf at this position is this one: nothing to say
            if self._mismatch_run is not None:
                self._close_mismatch_run()
        else:
            self._compare_with_view(index, notification, stream_id, state_sha256, digest)
        pending = self._pending
        while pending and pending[0].tree_size == self.frontier.size:
            self._check_checkpoint(pending.popleft(), position)
        heads = self._heads
        while heads and heads[0][1].size <= self.frontier.size:
            self._check_head(*heads.popleft(), position)

    def finish(self, stop: int, events: int) -> None:
        """After the last leaf (`events` leaves up to position `stop`): the view's leaves the store lacks,
        checkpoints over more leaves than it has, and the checkpoints whose roots no longer hold."""
        self._close_mismatch_run()
        while self._head is not None:  # leaves of the view for which the store has no event any more
            self._missing(_ViewLeaf.of(self._head))
            self._advance_view()
        self._view_beyond(stop)
        while self._pending:  # checkpoints over more leaves than the store has events
            self._check_checkpoint(self._pending.popleft(), None)
        self._report_checkpoint_mismatches(events)
        while self._heads:  # tree heads over more leaves than the store has events
            self._check_head(*self._heads.popleft(), None)
        self._check_view_size()

    def _check_head(self, label: str, head: TreeHead, position: int | None) -> None:
        """The store's ledger extends `head` (checked once the frontier reached its size, or at the end)."""
        frontier = self.frontier
        problem = rollback(head, frontier.size, lambda size: frontier.root() if size == frontier.size else b"")
        if problem is not None:
            self.problem(position, "rollback", f"{label}: {problem}")

    def _check_view_size(self) -> None:
        """The ledger view's size never went below a tree head signed earlier (a rebuild after a rollback)."""
        if not self._all_heads or not _table_exists(self.database, "ledger_state"):
            return
        with self.database.reading() as cursor:
            row = cursor.execute("SELECT size FROM ledger_state WHERE id = 1").fetchone()
        size = int(row[0]) if row else 0
        for label, head in self._all_heads:
            if size < head.size:
                self.problem(
                    None,
                    "rollback",
                    f"{label}: the ledger view has {size} leaves, fewer than the {head.size} of a checkpoint "
                    f"signed earlier ({head.source}): its size went backwards",
                )

    def diverge(self, index: int, position: int) -> None:
        if self.divergence is None or index < self.divergence[0]:
            self.divergence = (index, position)

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
            self._mismatch_run = [len(self.findings.problems) - 1, position, position, 1]
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
        self.findings.amend(
            at,
            f"{self.findings.problems[at].detail}; the same holds at each of the {count} positions {first}..{last}: "
            "events were inserted, removed or reordered",
        )

    def _view_beyond(self, stop: int) -> None:
        """Leaves the view holds past `stop` (it may run ahead of the audit) must still have their events."""
        if not _table_exists(self.database, "ledger_leaves"):
            return
        after = stop
        while True:
            with self.database.reading() as cursor:
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

    def _report_checkpoint_mismatches(self, events: int) -> None:
        """One problem for the first checkpoint whose signed root the store no longer gives (every later one
        then fails too, and is counted in it)."""
        failed = self._failed_checkpoints
        if not failed:
            return
        checkpoint, signed, actual = failed[0]
        later = f"; {len(failed) - 1} later checkpoint(s) fail as well" if len(failed) > 1 else ""
        if actual is None:
            what = f"it covers {checkpoint.tree_size} leaves but the event store has only {events} events"
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
