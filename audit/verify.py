"""``nocert audit verify`` (API.md §8): the event store checked against the ledger, its signed checkpoints,
every sealed proof and the §4 status machine. It only reads, so it may run while the service runs.

One pass over the log in position order, up to the position the log had when the audit started:

* every leaf is recomputed from the stored bytes (`signing.leaf`) and appended to a
  Merkle frontier; the leaf is compared with the ledger view's (``ledger_leaves``), matched by position;
* when the frontier reaches a checkpoint's tree size, the checkpoint's JWS is verified against the root,
  its payload against its row, and its root against the recomputed one;
* every event is decoded with the application's mapper and its stream checked: versions 1, 2, 3...,
  one aggregate per stream, and for checks every event allowed from the status reached so far;
* every ``Replied`` proof is verified as of its issue (in worker processes when there are many).

Problems carry a stable ``kind`` (`KINDS`) and the global position they concern (None when none applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography import x509
from eventsourcing.persistence import Notification

from audit.ledger_scan import LedgerScan
from audit.proof_workers import ProofVerifier
from audit.report import AuditReport, Findings, Progress
from audit.streams import StreamAudit
from signing.proofs import Trust
from signing.rollback import TreeHead
from store.database import Database
from store.eventlog import EventLog

PAGE_SIZE = 1000


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
    heads: Sequence[tuple[str, TreeHead]] = (),
) -> AuditReport:
    """Audits the whole event store of `app` (a `domain.platform.Platform`); see the module's docstring.

    `trust`: the platform's record of departments (`api.trust.PlatformTrust`); without it, a department is
    known once the log registers it. `workers`: processes verifying proofs (default one per core; 1
    verifies in this process). `heads`: tree heads signed earlier (archived checkpoints, witnesses'), each with
    where it comes from: the store's ledger must be an append-only extension of each (kind ``rollback``)."""
    findings = Findings()
    proofs = ProofVerifier(root_cert, workers)
    try:
        return _Audit(app, database, log, root_cert, trust, findings, proofs, progress, page_size, heads).run()
    finally:
        proofs.close()


class _Audit:
    """One pass over the log, feeding each event to the ledger scan and the stream audit."""

    def __init__(
        self,
        app: Any,
        database: Database,
        log: EventLog,
        root_cert: x509.Certificate,
        trust: Trust | None,
        findings: Findings,
        proofs: ProofVerifier,
        progress: Progress | None,
        page_size: int,
        heads: Sequence[tuple[str, TreeHead]],
    ) -> None:
        self.log = log
        self.findings = findings
        self.proofs = proofs
        self.progress = progress
        self.page_size = page_size
        self.report = AuditReport()
        self.ledger = LedgerScan(database, log, root_cert, findings, page_size, heads)
        self.streams = StreamAudit(app, findings, proofs, trust)
        self.last_position = 0

    def run(self) -> AuditReport:
        self.report.checkpoints = self.ledger.read_checkpoints()
        stop = self.log.max_position()
        self.ledger.open_view(stop)
        if self.progress is not None:
            self.progress(0, stop)
        after = 0
        while after < stop:
            # The rows as stored, read by the audit itself: a row eventsourcing could not convert (a state
            # stored as TEXT, an id that is no UUID) is a problem at its position, not the end of the audit.
            page = self.log.read_rows(after, self.page_size, stop=stop)
            if not page:
                break
            for row in page:
                notification, faults, placed = _notification(row)
                if faults:
                    detail = f"the row is not as stored events are: {'; '.join(faults)}"
                    self.findings.add(notification.id, "undecodable_event", detail)
                self._event(notification, follow=placed)
            after = page[-1][0]
            if self.progress is not None:
                self.progress(self.report.events, stop)
        self.ledger.finish(stop, self.report.events)
        self.findings.extend(self.proofs.finish())
        self.report.proofs = self.proofs.count
        self.report.erased_proofs = self.proofs.erased
        self.report.problems = self.findings.in_log_order()
        return self.report

    def _event(self, notification: Notification, follow: bool = True) -> None:
        index = self.report.events
        self.report.events = index + 1
        position = notification.id
        if position <= self.last_position:
            self.findings.add(
                position, "position_order", f"the event store returned position {position} after {self.last_position}"
            )
        else:
            self.last_position = position
        stream_id = str(notification.originator_id)
        self.ledger.leaf(index, notification, stream_id, sha256(notification.state).hexdigest())
        if follow:
            self.streams.follow(notification, stream_id, self.streams.decode(notification))


def _notification(row: tuple[Any, ...]) -> tuple[Notification, list[str], bool]:
    """The row ``(position, originator_id, originator_version, topic, state)`` as a notification, what in
    it is not what a stored event holds (stand-ins take those values, so that its leaf is still computed),
    and whether its stream and version are readable (its stream can be followed)."""
    position, originator, version, topic, state = row
    faults = []
    placed = True
    if isinstance(state, memoryview):
        state = bytes(state)
    if not isinstance(state, bytes):
        faults.append(f"its state is stored as {type(state).__name__}, not as bytes")
        state = state.encode("utf-8", "surrogateescape") if isinstance(state, str) else str(state).encode("utf-8")
    if isinstance(originator, UUID):
        stream_id = originator
    else:
        try:
            stream_id = UUID(originator if isinstance(originator, str) else bytes(originator).hex())
        except (ValueError, TypeError):
            faults.append(f"its stream id {str(originator)[:64]!r} is no UUID")
            stream_id = uuid5(NAMESPACE_URL, f"unreadable:{originator!r}")
            placed = False
    if isinstance(version, bool) or not isinstance(version, int):
        faults.append(f"its version {str(version)[:64]!r} is no integer")
        version = 0
        placed = False
    if not isinstance(topic, str):
        faults.append("its topic is not text")
        topic = str(topic)
    return Notification(id=int(position), originator_id=stream_id, originator_version=version, topic=topic, state=state), faults, placed
