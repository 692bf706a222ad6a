"""Rebuilding every view from the whole log (``nocert views rebuild``), safe while the service runs.

The log is replayed into shadow tables beside the live views (`schema.create_shadow`), in short
transactions, while the follower keeps the live views. To swap the shadow in, the rebuild first takes the
``views-rebuild`` lock, which followers look at before taking the leader lock (so a busy follower cannot
starve it), then the leader lock. One rebuild runs at a time (the ``views-shadow`` lock).
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import Retrying, retry_if_result, wait_fixed

from projections import ledger, schema
from projections.follower import LEADER_LOCK, REBUILD_LOCK
from projections.projector import Projector, positions
from signing.rollback import TreeHead
from store.database import Database, LeaderLock
from store.eventlog import EventLog

SHADOW_LOCK = "views-shadow"  # held by the one rebuild that builds the shadow views

Progress = Callable[[int, int], None]
"""``progress(done, total)``: events replayed and the estimated total, after each transaction."""


class Rebuild:
    """One rebuild of the views in `database` from `log`, with `projector` (which signs no checkpoint: the
    shadow's ledger is unchecked until the swap, and the follower signs what is due after it)."""

    def __init__(
        self,
        database: Database,
        log: EventLog,
        projector: Projector,
        *,
        live_position: Callable[[], int],
        chunk: int,
        progress: Progress | None,
        highest: TreeHead | None = None,
    ) -> None:
        self.database = database
        self.log = log
        self.projector = projector
        self.live_position = live_position
        self.chunk = chunk
        self.progress = progress
        self.highest = highest  # the highest checkpoint ever signed, as archived outside the database

    def run(self) -> int:
        """Replays the whole log into the shadow and swaps it in; returns the events replayed.

        The shadow is filled in transactions of `chunk` events while commands write between them. Once it
        is within one chunk of the log, the rebuild takes the leader lock (the live views stop moving),
        brings the shadow up to them, and in one transaction applies the last events, checks every signed
        checkpoint (and the highest ever signed, `highest`) against the new ledger and swaps the shadow in: readers see the old views until it
        commits, then the whole new ones. Checkpoints are never touched; a contradicted one raises
        `ledger.LedgerMismatch` and the shadow is dropped. A rebuild that dies leaves the live views as
        they were; the next drops its shadow."""
        own = self.database.leader_lock(SHADOW_LOCK)
        intent = self.database.leader_lock(REBUILD_LOCK)
        lock = self.database.leader_lock(LEADER_LOCK)
        try:
            _acquire(own)
            with self.database.transaction() as cursor:
                schema.create_shadow(cursor, self.database.dialect)
            done = self._fill_shadow(0)
            # Announce the swap first, so that followers stop taking the leader lock, then wait for it.
            _acquire(intent)
            _acquire(lock)
            # The shadow is brought up to the live views in short transactions too (so that the last one
            # is short, and that no reader ever sees a position go back), then the last events are
            # worked out beside the write lock and written with the swap.
            done = self._fill_shadow(done, floor=self.live_position())
            with self.database.reading() as cursor:
                batch = self.projector.prepare(schema.ShadowCursor(cursor), self.chunk)
            try:
                with self.database.transaction() as cursor:
                    shadow = schema.ShadowCursor(cursor)
                    if batch is not None:
                        self.projector.write(shadow, batch)
                    ledger.verify_checkpoints(shadow, self.highest)
                    schema.swap_shadow(cursor, self.database.dialect)
            except ledger.LedgerMismatch:
                with self.database.transaction() as cursor:
                    schema.drop_shadow(cursor)
                raise
            tail = batch.size if batch is not None else 0
            done += tail
            if tail or not done:
                self._report(done, self.live_position())
        finally:
            for held in (lock, intent, own):
                held.close()
        return done

    def _fill_shadow(self, done: int, floor: int = 0) -> int:
        """Applies the log to the shadow, `chunk` events a transaction, until the shadow is at ``floor``
        or beyond and less than `chunk` events behind the log. Returns ``done`` plus events applied.
        Each chunk is worked out in a read (no write lock), then written in a short transaction."""
        while True:
            with self.database.reading() as cursor:
                shadow = schema.ShadowCursor(cursor)
                reached = min(positions(shadow).values())
                if reached >= floor and self.log.max_position() - reached < self.chunk:
                    return done
                batch = self.projector.prepare(shadow, self.chunk)
            if batch is None:
                return done
            with self.database.transaction() as cursor:
                self.projector.write(schema.ShadowCursor(cursor), batch)
            done += batch.size
            self._report(done, batch.last)

    def _report(self, done: int, reached: int) -> None:
        if self.progress is not None:
            self.progress(done, done + max(0, self.log.max_position() - reached))


def _acquire(lock: LeaderLock) -> None:
    """Waits for the lock, however long its holder keeps it."""
    Retrying(retry=retry_if_result(lambda acquired: not acquired), wait=wait_fixed(0.02))(lock.try_acquire)
