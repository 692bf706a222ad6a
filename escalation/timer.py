"""The Overdue timer (API.md §13): records ``Overdue`` on every unanswered check within 60 s of it passing
its due time, once per due time, across processes, nodes and restarts.

One timer of a deployment works at a time: it holds the database's ``overdue`` leader lock (an advisory
lock on PostgreSQL, a file lock beside the SQLite file) for one tick and lets go, so another process takes
over when its holder dies. Nothing is remembered between ticks but the log: the checks view lists the
candidates (`projections.checks.overdue_pending`) and the check itself refuses a second ``Overdue`` for the
same due time, so two timers racing, a restart or a view that lags record it once (the store refuses the
second of two concurrent saves). Each tick takes at most `BATCH` checks and ticks again at once while
there were that many.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from domain.platform import Platform
from projections.views import Views
from store.database import Database, LeaderLock

logger = logging.getLogger(__name__)

LOCK = "overdue"
TICK_SECONDS = 10.0  # well within §13's 60 s, also after a view lag of a few seconds
BATCH = 200
MAX_BACKOFF_SECONDS = 30.0


class OverdueTimer:
    """`tick` once (tests, with their own clock), or `start` a daemon thread that ticks every `every` s."""

    def __init__(
        self,
        platform: Platform,
        views: Views,
        database: Database,
        *,
        clock: Callable[[], datetime] | None = None,
        every: float = TICK_SECONDS,
    ) -> None:
        self.platform = platform
        self.views = views
        self.database = database
        self.clock = clock or platform.clock
        self.every = every
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: LeaderLock | None = None

    def tick(self) -> int:
        """Records every ``Overdue`` due now (if this process holds the lock); returns how many."""
        if self._lock is None:
            self._lock = self.database.leader_lock(LOCK)
        if not self._lock.try_acquire():
            return 0
        recorded = 0
        try:
            while not self._stopping.is_set():
                now = self.clock()
                candidates = self.views.overdue_pending(now, BATCH)
                batch = 0
                for check_id in candidates:
                    position = self.platform.record_overdue(UUID(check_id), now)
                    if position is not None:
                        batch += 1
                        logger.info("check %s passed its due time: Overdue recorded at position %d", check_id, position)
                recorded += batch
                if len(candidates) < BATCH or not batch:
                    break
                # The view has to show the Overdue just recorded before the next batch is asked for.
                self.views.wait_for(self.platform.recorder.max_notification_id() or 0)
        finally:
            self._lock.release()
        if recorded:
            self.views.nudge()
        return recorded

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="nocert-overdue", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join(timeout=30)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self.tick()
                failures = 0
                pause = self.every
            except Exception:  # the store is away: log, back off, try again
                failures += 1
                pause = min(self.every * 2**failures, MAX_BACKOFF_SECONDS)
                logger.error("Overdue timer failed (%d times); retrying in %.0f s", failures, pause, exc_info=failures == 1)
            self._stopping.wait(pause)
