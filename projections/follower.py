"""The follower that keeps the views (API.md §7's "within 10 s" included): one thread per process.

At any moment at most one follower of a deployment writes: it holds the database's ``views`` leader lock for
a run of batches until the views have caught up with the log, then lets go (so a rebuild, or another process,
can take it). It wakes when a local command nudges it and otherwise looks at the log's head every
``POLL_SECONDS``. Each batch is one transaction (see `projections.projector`), so a follower killed at any
point leaves nothing half done. A failure is logged and retried with a growing back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from projections import ledger
from projections.projector import Projector, positions, tracked
from signing.archive import CheckpointArchive
from signing.key import SigningKey
from store.database import Database, LeaderLock
from store.eventlog import EventLog

logger = logging.getLogger(__name__)

LEADER_LOCK = "views"  # held by the one writer of the views
REBUILD_LOCK = "views-rebuild"  # held by a rebuild waiting for (or holding) the leader lock
POLL_SECONDS = 0.2
# A follower woken by a command waits for more commands to batch with it: until GATHER_COMMANDS commands
# have nudged it, for at most GATHER_SECONDS, not at all for a reader waiting for a position (urgent). A batch
# costs much less per event when larger (bench.projection, CPU of the follower per event at 12, 50 and 200
# events a batch: PostgreSQL 367, 278, 132 µs; SQLite 256, 193, 111 µs): under load the background process
# then takes less of the CPU the requests need; at rest a command's views lag GATHER_SECONDS behind it.
GATHER_COMMANDS = 50
GATHER_SECONDS = 0.1
COVER_CHECK_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0
WAIT_SLICE_SECONDS = 0.05


class Follower:
    """Applies the log to the views in batches, in a thread of its own (`start`) or a step at a time
    (`follow_once`), and lets readers wait for a position (`wait_for`)."""

    def __init__(
        self,
        database: Database,
        log: EventLog,
        projector: Projector,
        *,
        ledger_signer: SigningKey,
        clock: Callable[[], datetime],
        batch_size: int,
        ready: Callable[[], None],
        archive: CheckpointArchive | None = None,
    ) -> None:
        self.database = database
        self.log = log
        self.projector = projector
        self.ledger_signer = ledger_signer
        self.clock = clock
        self.batch_size = batch_size
        self._ready = ready  # creates the views' tables once
        self.archive = archive  # where the highest signed checkpoint is kept outside the database
        self._advanced = threading.Condition()
        self._wake = threading.Event()
        self._gathered = threading.Event()  # enough commands (or an urgent one) to take the next step now
        self._commands = 0  # nudges since the last step
        self._commands_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._next_cover_check = 0.0
        self._intent: LeaderLock | None = None  # the follower's view of the rebuild lock
        self._listeners: list[Callable[[], None]] = []
        self._nudged = False  # the next step follows a command's nudge: the log has moved (`follow_once`)
        # The size of the checkpoint last kept in the archive (-1: none yet), and the size of the latest
        # checkpoint as this step's batches found or signed it (None: unknown, so read from the database).
        self._archived = -1
        self._latest: int | None = None

    def start(self) -> None:
        """Starts the follower thread (a daemon); does nothing if it runs already."""
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._follow, name="nocert-views", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._thread_lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._wake.set()
            self._gathered.set()
        if thread is not None:
            thread.join(timeout=30)
            if thread.is_alive():
                logger.warning("views follower did not stop within 30 s")

    def nudge(self, *, urgent: bool = False) -> None:
        """Wakes the follower (after a local command recorded events): once `GATHER_COMMANDS` commands
        have nudged it or within `GATHER_SECONDS`, or at once when `urgent` (a reader waits for a position)."""
        with self._commands_lock:
            self._commands += 1
            if urgent or self._commands >= GATHER_COMMANDS:
                self._gathered.set()
            self._wake.set()

    def gathered(self) -> bool:
        """Whether the follower, woken, stops gathering commands and takes its next step now."""
        return self._gathered.is_set()

    def _follow(self) -> None:
        lock = self.database.leader_lock(LEADER_LOCK)
        try:
            while not self._stopping.is_set():
                if not self._step(lock):
                    return  # stopped while failing
                self._nudged = self._wake.wait(POLL_SECONDS)
                if self._nudged:
                    # Woken by a command: let the commands of the next moments join it (see
                    # GATHER_COMMANDS), so that one batch (and one round of tracking, lock and ledger
                    # statements) takes them all. A reader waiting for a position does not wait for this.
                    self._gathered.wait(GATHER_SECONDS)
                with self._commands_lock:  # what nudges from now on wakes the next wait
                    self._commands = 0
                    self._wake.clear()
                    self._gathered.clear()
        except BaseException:
            logger.critical("views follower stopped by an unexpected error", exc_info=True)
            raise
        finally:
            lock.close()
            if self._intent is not None:
                self._intent.close()
                self._intent = None

    def _pause(self, seconds: float) -> None:
        """Waits out a back-off, or less when the follower is stopped."""
        self._stopping.wait(seconds)

    def _step(self, lock: LeaderLock) -> bool:
        """One `follow_once`, retried after a failure with a growing back-off (`POLL_SECONDS` doubling up
        to `MAX_BACKOFF_SECONDS`) until it succeeds; False when the follower was stopped meanwhile."""

        def step() -> None:
            self._ready()
            self.follow_once(lock, nudged=self._nudged)

        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            stop=lambda state: self._stopping.is_set(),
            wait=wait_exponential(multiplier=POLL_SECONDS, min=POLL_SECONDS, max=MAX_BACKOFF_SECONDS),
            sleep=self._pause,
            before_sleep=_log_failure,
            reraise=True,
        )
        try:
            retrying(step)
        except Exception:
            if self._stopping.is_set():
                return False
            raise
        failures = retrying.statistics.get("attempt_number", 1) - 1
        if failures:
            logger.warning("views follower recovered after %d failures", failures)
        return True

    def follow_once(self, lock: LeaderLock, *, nudged: bool = False) -> int:
        """One wake-up of the follower: if the views are behind the log (or a checkpoint is due), takes the
        leader lock, applies batches until caught up, signs a checkpoint if one is due, and lets go.
        Returns the number of events applied; 0 also when another process holds the lock.

        ``nudged``: a command of this process recorded events since the last step, so the views are
        behind: the step goes to the lock without first reading the log's head (a batch that finds
        nothing to apply applies nothing)."""
        self._ready()
        # Uncovered leaves are looked for once every COVER_CHECK_SECONDS, whether or not there is work.
        cover_check = time.monotonic() >= self._next_cover_check
        if cover_check:
            self._next_cover_check = time.monotonic() + COVER_CHECK_SECONDS
        if not nudged:
            head, position = self.head_and_position()
            if head <= position and not (cover_check and self._cover_due()):
                return 0
        if self._rebuild_waiting() or not lock.try_acquire():
            return 0
        applied = 0
        self._latest = None
        try:
            while not self._stopping.is_set():
                count = self._apply_batch()
                if count:
                    applied += count
                    self.notify()
                if count < self.batch_size:
                    break
            if cover_check and self._cover_due():
                with self.database.transaction() as cursor:
                    if ledger.checkpoint_uncovered(cursor, self.ledger_signer, self.clock()):
                        self._latest = None
            self._archive_latest()
        finally:
            lock.release()
        return applied

    def _archive_latest(self) -> None:
        """Keeps the latest signed checkpoint in the archive, once it is committed (see `signing.archive`).
        Nothing is read when this step's batches found no checkpoint beyond the one archived last."""
        if self.archive is None or (self._latest is not None and self._latest <= self._archived):
            return
        with self.database.reading() as cursor:
            latest = ledger.latest_checkpoint(cursor)
        if latest is None:
            self._archived = 0
            return
        try:
            self.archive.record(latest)
        except (OSError, ValueError):
            logger.error("could not archive the checkpoint at tree size %s", latest["tree_size"], exc_info=True)
        else:
            self._archived = int(latest["tree_size"])

    def _apply_batch(self) -> int:
        """Works out the next batch and writes it, with the views' positions as the batch's guard.

        On SQLite the batch is worked out in a read transaction and written in a short write transaction:
        reading the log and loading aggregates happens before the write lock is taken (a follower that
        held the database's write lock while waiting for the event store's connection pool deadlocked
        with request threads holding that pool while waiting for the write lock). PostgreSQL has no
        database-wide write lock, and only the leader writes the views: there one transaction does both,
        a transaction (and its round trips) fewer per batch."""
        if self.database.dialect == "sqlite":
            with self.database.reading() as cursor:
                batch = self.projector.prepare(cursor, self.batch_size)
            if batch is None:
                return 0
            with self.database.transaction() as cursor:
                self.projector.write(cursor, batch)
        else:
            with self.database.transaction() as cursor:
                batch = self.projector.prepare(cursor, self.batch_size)
                if batch is None:
                    return 0
                self.projector.write(cursor, batch)
        # The latest checkpoint after the batch: the last one before it, or one it signed (a batch the
        # ledger does not follow leaves it unknown).
        self._latest = None if batch.ledger is None else batch.ledger.checkpointed
        return batch.size

    def _rebuild_waiting(self) -> bool:
        """A rebuild (of any process) has announced itself: let it have the leader lock next."""
        if self._intent is None:
            self._intent = self.database.leader_lock(REBUILD_LOCK)
        if self._intent.try_acquire():
            self._intent.release()
            return False
        return True

    def _cover_due(self) -> bool:
        with self.database.reading() as cursor:
            since = ledger.uncovered_since(cursor)
        return since is not None and self.clock() - since >= ledger.UNCOVERED_GRACE

    def notify(self) -> None:
        """Wakes the readers waiting in `wait_for` and the listeners of `on_advance` (the views moved)."""
        with self._advanced:
            self._advanced.notify_all()
        for listener in self._listeners:
            listener()

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Calls `listener` (in the follower's thread; it must not block) whenever the views moved."""
        self._listeners.append(listener)

    def position(self) -> int:
        """The lowest tracking position over all views, from the database (right in every process)."""
        self._ready()
        with self.database.reading() as cursor:
            return min(positions(cursor).values())

    def head_and_position(self) -> tuple[int, int]:
        """The log's head and `position`, in one query (one snapshot) where the log shares the database."""
        head_query = self.log.head_query()
        if head_query is None:
            return self.log.max_position(), self.position()
        self._ready()
        with self.database.reading() as cursor:
            rows = cursor.execute(
                f"SELECT h.head, t.view_name, t.position FROM ({head_query}) AS h LEFT JOIN view_tracking t ON 1 = 1"
            ).fetchall()
        return int(rows[0][0] or 0), min(tracked((row[1], row[2]) for row in rows).values())

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """True once every view reflects ``position``; False after ``timeout`` seconds."""
        if self.position() >= position:
            return True
        self.nudge(urgent=True)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._advanced:
                self._advanced.wait(min(remaining, WAIT_SLICE_SECONDS))
            if self.position() >= position:
                return True

    def lag(self) -> int:
        # The head through the recorder first: its breaker answers at once while the store is down (readiness).
        return max(0, self.log.max_position() - self.position())

    # -- lists --------------------------------------------------------------------------------


def _log_failure(state: RetryCallState) -> None:
    """The whole story of the first failure, then one line per retry."""
    error = state.outcome.exception() if state.outcome is not None else None
    backoff = state.next_action.sleep if state.next_action is not None else 0.0
    if state.attempt_number == 1:
        logger.error("views follower failed; retrying in %.1f s", backoff, exc_info=error)
    else:
        logger.error(
            "views follower failed again (%d times): %s; retrying in %.1f s", state.attempt_number, error, backoff
        )
