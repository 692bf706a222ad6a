"""The views the API reads (lists, inbox, coverage, audit ledger): one façade over the read models, the
follower that keeps them (`projections.follower`) and their rebuild (`projections.rebuild`)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

import domain.timefmt
from domain.ports import PersonalData
from projections import checks, cosignatures, coverage, ledger, schema, subjects
from projections.follower import Follower
from projections.projector import BATCH_SIZE, Projector, positions
from projections.rebuild import Progress, Rebuild
from signing.archive import CheckpointArchive
from signing.key import SigningKey
from signing.note import NoteSigner, Signature
from store.database import Database, LeaderLock
from store.eventlog import EventLog

# Aggregates the projector keeps between batches. The follower needs the checks in flight (a miss costs
# one read of the event store); a rebuild replays whole histories, where a check's events may lie
# batches apart. A closed check with its proof is about 10 KiB.
FOLLOWER_CACHE = 500
REBUILD_CACHE = 20_000


class Views:
    """Read models kept from the event log, their follower and their rebuild."""

    def __init__(
        self,
        database: Database,
        app: Application[UUID],
        log: EventLog,
        *,
        ledger_signer: SigningKey,
        personal: PersonalData,
        checkpoint_every: int = 1000,
        clock: Callable[[], datetime] = domain.timefmt.utcnow,
        batch_size: int = BATCH_SIZE,
        log_origin: str = "nocert.localhost/ledger",
        archive: CheckpointArchive | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.database = database
        self.app = app
        self.log = log
        self.ledger_signer = ledger_signer
        self.personal = personal
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        self.batch_size = batch_size
        self.archive = archive
        # The ledger key as a C2SP note signer under the log's origin (API.md §15).
        self.note_signer = NoteSigner.from_signer(log_origin, ledger_signer)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self.relay: Callable[[bool], None] | None = None  # (urgent): where the follower runs elsewhere
        self.follower = Follower(
            database,
            log,
            self._new_projector(),
            ledger_signer=ledger_signer,
            clock=clock,
            batch_size=batch_size,
            ready=self._ready,
            archive=archive,
        )

    def _new_projector(self, checkpoint_every: int | None = None, cache_size: int = FOLLOWER_CACHE) -> Projector:
        return Projector(
            self.app,
            self.log,
            signer=self.ledger_signer,
            checkpoint_every=checkpoint_every or self.checkpoint_every,
            clock=self.clock,
            personal=self.personal,
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
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()

    def nudge(self, *, urgent: bool = False) -> None:
        """Wakes the follower after a local command recorded events (see `Follower.nudge`), and the
        node's background process through `relay` when the follower runs there (`api.background`)."""
        self.follower.nudge(urgent=urgent)
        if self.relay is not None:
            self.relay(urgent)

    def follow_once(self, lock: LeaderLock) -> int:
        """One step of the follower, in this thread (see `Follower.follow_once`)."""
        return self.follower.follow_once(lock)

    def position(self) -> int:
        """The lowest tracking position over all views, from the database (right in every process)."""
        return self.follower.position()

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """True once every view reflects ``position``; False after ``timeout`` seconds."""
        return self.follower.wait_for(position, timeout)

    def lag(self) -> int:
        return self.follower.lag()

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
                self.personal,
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
            return checks.inbox(db, now, self.personal, issuer, limit=limit, after=cursor)

    # -- subjects (API.md §14) -----------------------------------------------------------------

    def accesses(self, subject: str, *, limit: int = 50, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """The checks whose applicant is `subject` (a blind index entry), newest first."""
        self._ready()
        with self.database.reading() as db:
            return subjects.accesses(db, subject, limit=limit, after=cursor)

    def checks_of_subject(self, subject: str) -> list[str]:
        self._ready()
        with self.database.reading() as db:
            return subjects.check_ids(db, subject)

    def record_lookup(self, principal: str, at: str, results: int) -> None:
        self._ready()
        with self.database.transaction() as db:
            subjects.record_lookup(db, principal, at, results)

    def record_erasure(self, erasure_id: str, erased_at: str, checks_erased: int, receipt: str) -> None:
        self._ready()
        with self.database.transaction() as db:
            subjects.record_erasure(db, erasure_id, erased_at, checks_erased, receipt)

    def erasures(self, *, limit: int = 50, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        self._ready()
        with self.database.reading() as db:
            return subjects.erasures(db, limit=limit, after=cursor)

    def overdue_pending(self, now: datetime, limit: int) -> list[str]:
        """Checks past their due time with no ``Overdue`` for it yet (`projections.checks.overdue_pending`)."""
        self._ready()
        with self.database.reading() as db:
            return checks.overdue_pending(db, now, limit)

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

    def checkpoint_note(self, tree_size: int | None = None) -> str | None:
        """The checkpoint of `tree_size` (default the latest) as a C2SP note with its stored cosignatures."""
        self._ready()
        with self.database.reading() as db:
            found = ledger.latest_checkpoint(db) if tree_size is None else ledger.checkpoint(db, tree_size)
            if found is None:
                return None
            return cosignatures.note(self.note_signer, found, cosignatures.for_size(db, found["tree_size"]))

    def latest_note(self) -> tuple[int, str] | None:
        """The latest checkpoint's size and its note by the ledger key alone (what a witness is sent)."""
        found = self.latest_checkpoint()
        if found is None:
            return None
        return int(found["tree_size"]), cosignatures.note(self.note_signer, found, ())

    def consistency_nodes(self, first: int, second: int) -> list[bytes]:
        return [bytes.fromhex(node) for node in self.consistency_proof(first, second)["path"]]

    def record_cosignatures(self, tree_size: int, signatures: list[Signature]) -> None:
        self._ready()
        with self.database.transaction() as db:
            cosignatures.record(db, tree_size, signatures)

    def witnessed_size(self, witness: str, key_id: bytes) -> int:
        self._ready()
        with self.database.reading() as db:
            return cosignatures.witnessed_size(db, witness, key_id)

    def newest_cosigned(self) -> tuple[int, str] | None:
        """The size and ``issued_at`` of the newest checkpoint a witness cosigned."""
        self._ready()
        with self.database.reading() as db:
            return cosignatures.newest_cosigned(db)

    def oldest_unanswered(self) -> dict[str, str]:
        """Issuer → raised_at of its oldest check waiting for an answer (operators alert on its age)."""
        self._ready()
        with self.database.reading() as db:
            return checks.oldest_unanswered(db)

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

    def rebuild(self, progress: Progress | None = None, *, chunk_size: int | None = None) -> int:
        """Rebuilds every view from the whole log, safe while the service runs; returns events replayed
        (see `projections.rebuild`). ``chunk_size``: events a transaction (default: the follower's batch)."""
        self._ready()
        # The shadow signs no checkpoint (its ledger is unchecked until the swap): the follower signs
        # what is due after it.
        projector = self._new_projector(checkpoint_every=sys.maxsize, cache_size=REBUILD_CACHE)
        rebuild = Rebuild(
            self.database,
            self.log,
            projector,
            live_position=self.position,
            chunk=chunk_size or self.batch_size,
            progress=progress,
            highest=self.archive.head() if self.archive is not None else None,
        )
        done = rebuild.run()
        self.follower.notify()
        return done
