"""The views the API reads (lists, inbox, coverage, audit ledger) and the follower that keeps them.

One follower thread per process; at any moment at most one follower of a deployment writes: it holds the
database's ``views`` leader lock for a run of batches until the views have caught up with the log, then
lets go (so a rebuild, or another process, can take it). It wakes when a local command nudges it and
otherwise looks at the log's head every ``POLL_SECONDS``. Each batch is one transaction (see
`projections.projector`), so a follower killed at any point leaves nothing half done.

A rebuild (`Views.rebuild`) replays the log into shadow tables beside the live views, in short
transactions, while the follower keeps the live views. To swap the shadow in, it first takes the
``views-rebuild`` lock, which followers look at before taking the leader lock (so a busy follower cannot
starve it), then the leader lock. One rebuild runs at a time (the ``views-shadow`` lock).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventsourcing.application import Application

import domain.timefmt
from projections import checks, coverage, ledger, schema
from store.database import Database
from store.eventlog import EventLog
from projections.projector import BATCH_SIZE, Projector, positions
from signing.signer import Signer

logger = logging.getLogger(__name__)

LEADER_LOCK = "views"  # held by the one writer of the views
REBUILD_LOCK = "views-rebuild"  # held by a rebuild waiting for (or holding) the leader lock
SHADOW_LOCK = "views-shadow"  # held by the one rebuild that builds the shadow views
POLL_SECONDS = 0.2
# Aggregates the projector keeps between batches. The follower needs the checks in flight (a miss costs
# one read of the event store); a rebuild replays whole histories, where a check's events may lie
# batches apart. A closed check with its proof is about 10 KiB.
FOLLOWER_CACHE = 500
REBUILD_CACHE = 20_000
GATHER_SECONDS = 0.02  # how long a follower woken by a command waits for more commands to batch with it
COVER_CHECK_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0
WAIT_SLICE_SECONDS = 0.05


class Views:
    """Read models kept from the event log, and their follower."""

    def __init__(
        self,
        database: Database,
        app: Application,
        log: EventLog,
        *,
        ledger_signer: Signer,
        checkpoint_every: int = 1000,
        clock: Callable[[], datetime] = domain.timefmt.utcnow,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.database = database
        self.app = app
        self.log = log
        self.ledger_signer = ledger_signer
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        self.batch_size = batch_size
        self._projector = self._new_projector()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._advanced = threading.Condition()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._next_cover_check = 0.0
        self._intent: Any = None  # the follower's view of the rebuild lock

    def _new_projector(self, checkpoint_every: int | None = None, cache_size: int = FOLLOWER_CACHE) -> Projector:
        return Projector(
            self.app,
            self.log,
            signer=self.ledger_signer,
            checkpoint_every=checkpoint_every or self.checkpoint_every,
            clock=self.clock,
            cache_size=cache_size,
        )

    def _ready(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                schema.create_schema(self.database)
                self._schema_ready = True

    # -- the follower -------------------------------------------------------------------------

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
        if thread is not None:
            thread.join(timeout=30)
            if thread.is_alive():
                logger.warning("views follower did not stop within 30 s")

    def nudge(self, *, urgent: bool = False) -> None:
        """Wakes the follower (after a local command recorded events): within `GATHER_SECONDS`, or at
        once when `urgent` (a reader waits for a position)."""
        if urgent:
            self._urgent.set()
        self._wake.set()

    def _follow(self) -> None:
        lock = self.database.leader_lock(LEADER_LOCK)
        backoff = 0.0
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    self._ready()
                    self.follow_once(lock)
                except Exception as error:
                    failures += 1
                    backoff = min(max(POLL_SECONDS, backoff * 2), MAX_BACKOFF_SECONDS)
                    if failures == 1:  # the whole story once, then one line per retry
                        logger.exception("views follower failed; retrying in %.1f s", backoff)
                    else:
                        logger.error("views follower failed again (%d times): %s; retrying in %.1f s", failures, error, backoff)
                    self._stopping.wait(backoff)
                    continue
                if failures:
                    logger.warning("views follower recovered after %d failures", failures)
                    backoff, failures = 0.0, 0
                if self._wake.wait(POLL_SECONDS) and not self._urgent.is_set():
                    # Woken by a command: let the commands of the next few milliseconds join it, so
                    # that one batch (and one round of tracking, lock and ledger statements) takes
                    # them all. A reader waiting for a position does not wait for this.
                    self._urgent.wait(GATHER_SECONDS)
                self._wake.clear()
                self._urgent.clear()
        except BaseException:
            logger.critical("views follower stopped by an unexpected error", exc_info=True)
            raise
        finally:
            _close(lock)
            if self._intent is not None:
                _close(self._intent)
                self._intent = None

    def follow_once(self, lock: Any) -> int:
        """One wake-up of the follower: if the views are behind the log (or a checkpoint is due), takes the
        leader lock, applies batches until caught up, signs a checkpoint if one is due, and lets go.
        Returns the number of events applied; 0 also when another process holds the lock."""
        # Uncovered leaves are looked for once every COVER_CHECK_SECONDS, whether or not there is work.
        cover_check = time.monotonic() >= self._next_cover_check
        if cover_check:
            self._next_cover_check = time.monotonic() + COVER_CHECK_SECONDS
        behind = self.log.max_position() > self.position()
        if not behind and not (cover_check and self._cover_due()):
            return 0
        if self._rebuild_waiting() or not lock.try_acquire():
            return 0
        applied = 0
        try:
            while not self._stopping.is_set():
                count = self._apply_batch()
                if count:
                    applied += count
                    self._notify()
                if count < self.batch_size:
                    break
            if cover_check and self._cover_due():
                with self.database.transaction() as cursor:
                    ledger.checkpoint_uncovered(cursor, self.ledger_signer, self.clock())
        finally:
            lock.release()
        return applied

    def _apply_batch(self) -> int:
        """Works out the next batch in a read transaction, then writes it in a short write transaction.

        Reading the log and loading aggregates happens before the write lock is taken: on SQLite, a
        follower that held the database's write lock while waiting for the event store's connection
        pool deadlocked with request threads holding that pool while waiting for the write lock."""
        with self.database.reading() as cursor:
            batch = self._projector.prepare(cursor, self.batch_size)
        if batch is None:
            return 0
        with self.database.transaction() as cursor:
            self._projector.write(cursor, batch)
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

    def _notify(self) -> None:
        with self._advanced:
            self._advanced.notify_all()

    # -- positions ----------------------------------------------------------------------------

    def position(self) -> int:
        """The lowest tracking position over all views, from the database (right in every process)."""
        self._ready()
        with self.database.reading() as cursor:
            return min(positions(cursor).values())

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
        return max(0, self.log.max_position() - self.position())

    # -- lists --------------------------------------------------------------------------------

    def list_checks(
        self,
        *,
        approver: str | None = None,
        issuer: str | None = None,
        party: str | None = None,
        status: str | None = None,
        category: str | None = None,
        overdue: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Checks newest first, masked and without proof JWS; ValueError for a bad filter or cursor.
        ``party``: checks whose approver or current issuer is that department (both roles)."""
        self._ready()
        now = self.clock()
        with self.database.reading() as db:
            return checks.list_checks(
                db,
                now,
                approver=approver,
                issuer=issuer,
                party=party,
                status=status,
                category=category,
                overdue=overdue,
                limit=limit,
                after=cursor,
            )

    def inbox(self, issuer: str, *, limit: int = 50, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        self._ready()
        now = self.clock()
        with self.database.reading() as db:
            return checks.inbox(db, now, issuer, limit=limit, after=cursor)

    # -- coverage -----------------------------------------------------------------------------

    def coverage(self, *, category: str | None = None, region: str | None = None) -> dict[str, Any]:
        self._ready()
        now = self.clock()
        with self.database.reading() as db:
            position = positions(db)["coverage"]
            return coverage.read_coverage(db, now, position, category=category, region=region)

    # -- audit ledger -------------------------------------------------------------------------

    def audit_events(self, after: int, limit: int) -> dict[str, Any]:
        self._ready()
        with self.database.reading() as db:
            leaves = ledger.audit_leaves(db, after, limit)
        if not leaves:
            return {"items": [], "next_after": None}
        last = int(leaves[-1][1])
        states = {n.id: n.state for n in self.log.read(after, len(leaves), stop=last)}
        items = [ledger.audit_item(leaf, states[int(leaf[1])]) for leaf in leaves]
        return {"items": items, "next_after": last if len(items) == limit else None}

    def latest_checkpoint(self) -> dict[str, Any] | None:
        self._ready()
        with self.database.reading() as db:
            return ledger.latest_checkpoint(db)

    def checkpoint(self, tree_size: int) -> dict[str, Any] | None:
        self._ready()
        with self.database.reading() as db:
            return ledger.checkpoint(db, tree_size)

    def ledger_size(self) -> int:
        self._ready()
        with self.database.reading() as db:
            return ledger.read_size(db)

    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        self._ready()
        with self.database.reading() as db:
            return ledger.inclusion_proof(db, index, tree_size)

    def consistency_proof(self, first: int, second: int) -> dict[str, Any]:
        self._ready()
        with self.database.reading() as db:
            return ledger.consistency_proof(db, first, second)

    # -- rebuild ------------------------------------------------------------------------------

    def rebuild(self, progress: Callable[[int, int], None] | None = None, *, chunk_size: int | None = None) -> int:
        """Rebuilds every view from the whole log, safe while the service runs; returns events replayed.

        The log is replayed into a shadow of the views (`schema.create_shadow`) in short transactions of
        ``chunk_size`` events (default: the follower's batch size), while the follower keeps the live
        views, and commands write between them. Once the shadow is within one chunk of the log, the
        rebuild takes the leader lock (the live views stop moving), brings the shadow up to them, and in
        one transaction applies the last events, checks every signed checkpoint against the new ledger
        and swaps the shadow in: readers see the old views until it commits, then the whole new ones.
        Checkpoints are never touched; a contradicted one raises `ledger.LedgerMismatch` and the shadow
        is dropped. A rebuild that dies leaves the live views as they were; the next drops its shadow.
        ``progress(done, total)``: events replayed and the estimated total, after each transaction."""
        self._ready()
        chunk = chunk_size or self.batch_size
        # The shadow signs no checkpoint (its ledger is unchecked until the swap): the follower signs
        # what is due after it.
        projector = self._new_projector(checkpoint_every=sys.maxsize, cache_size=REBUILD_CACHE)
        own = self.database.leader_lock(SHADOW_LOCK)
        intent = self.database.leader_lock(REBUILD_LOCK)
        lock = self.database.leader_lock(LEADER_LOCK)
        try:
            _acquire(own)
            with self.database.transaction() as cursor:
                schema.create_shadow(cursor, self.database.dialect)
            done = self._fill_shadow(projector, chunk, progress, 0)
            # Announce the swap first, so that followers stop taking the leader lock, then wait for it.
            _acquire(intent)
            _acquire(lock)
            # The shadow is brought up to the live views in short transactions too (so that the last one
            # is short, and that no reader ever sees a position go back), then the last events are
            # worked out beside the write lock and written with the swap.
            done = self._fill_shadow(projector, chunk, progress, done, floor=self.position())
            with self.database.reading() as cursor:
                batch = projector.prepare(schema.ShadowCursor(cursor), chunk)
            try:
                with self.database.transaction() as cursor:
                    shadow = schema.ShadowCursor(cursor)
                    if batch is not None:
                        projector.write(shadow, batch)
                    ledger.verify_checkpoints(shadow)
                    schema.swap_shadow(cursor, self.database.dialect)
            except ledger.LedgerMismatch:
                with self.database.transaction() as cursor:
                    schema.drop_shadow(cursor)
                raise
            tail = batch.size if batch is not None else 0
            done += tail
            if tail or not done:
                self._report(progress, done, self.position())
        finally:
            for held in (lock, intent, own):
                _close(held)
        self._notify()
        return done

    def _fill_shadow(
        self, projector: Projector, chunk: int, progress: Callable[[int, int], None] | None, done: int, floor: int = 0
    ) -> int:
        """Applies the log to the shadow, ``chunk`` events a transaction, until the shadow is at ``floor``
        or beyond and less than ``chunk`` events behind the log. Returns ``done`` plus events applied.
        Each chunk is worked out in a read (no write lock), then written in a short transaction."""
        while True:
            with self.database.reading() as cursor:
                shadow = schema.ShadowCursor(cursor)
                reached = min(positions(shadow).values())
                if reached >= floor and self.log.max_position() - reached < chunk:
                    return done
                batch = projector.prepare(shadow, chunk)
            if batch is None:
                return done
            with self.database.transaction() as cursor:
                projector.write(schema.ShadowCursor(cursor), batch)
            done += batch.size
            self._report(progress, done, batch.last)

    def _report(self, progress: Callable[[int, int], None] | None, done: int, reached: int) -> None:
        if progress is not None:
            progress(done, done + max(0, self.log.max_position() - reached))


def _acquire(lock: Any) -> None:
    while not lock.try_acquire():
        time.sleep(0.02)


def _close(lock: Any) -> None:
    lock.release()
    close = getattr(lock, "close", None)
    if close is not None:
        close()
