"""``nocert audit export``: one check's evidence bundle (its format: `audit.evidence`).

The events and their stored bytes come from the event store, their leaf indexes, inclusion paths and the
signed checkpoint from the ledger view. Before anything is written, each event's leaf is recomputed and
must equal the ledger's, and the checkpoint must verify and match the ledger's root at its size: an
export never hands out a bundle that would not verify.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography import x509
from tenacity import Retrying, retry_if_exception_type, stop_before_delay, wait_fixed

from audit.evidence import FORMAT, FULL, MASKED, SUMMARY_NOTE
from domain.errors import DomainError
from domain.privacy import mask_check
from domain.timefmt import format_time
from projections import ledger
from projections.checks import check_document
from signing import certificates, jws, merkle
from signing.checkpoints import InvalidCheckpoint, verify_checkpoint
from signing.leaf import event_leaf
from store.database import Database
from store.eventlog import EventLog


class ExportError(Exception):
    """The bundle cannot be made (yet); the message says why and what to do."""


class NotCovered(ExportError):
    """The ledger has not recorded the check's last event yet, or no signed checkpoint covers it yet."""


def export_bundle(
    app: Any,
    database: Database,
    log: EventLog,
    root_cert: x509.Certificate,
    check_id: UUID,
    now: datetime,
    *,
    masked: bool = False,
    checkpoint_note: Callable[[int], str | None] | None = None,
) -> dict[str, Any]:
    """The evidence bundle of the check (a `domain.platform.Platform` check), without its digest:
    write it with `audit.evidence.serialize`. Raises ExportError (NotCovered when waiting may help).

    `masked`: for a reader who may not see identity numbers (no stored states, no proof JWS).
    `checkpoint_note`: the C2SP note, with its cosignatures, of the checkpoint of a tree size."""
    try:
        check = app.check(check_id)
    except DomainError:
        raise ExportError(f"no check {check_id}") from None
    positions = log.stream_positions(check_id)
    notifications = [_notification(log, positions[version]) for version in sorted(positions)]
    if [n.originator_version for n in notifications] != list(range(1, check.version + 1)):
        raise ExportError(f"the event store holds versions {sorted(positions)} of check {check_id}, not 1..{check.version}")
    with database.reading() as cursor:
        leaves = _leaves(cursor, [n.id for n in notifications])
        missing = [n.id for n in notifications if n.id not in leaves]
        if missing:
            raise NotCovered(
                f"the ledger has not recorded the events at positions {missing} yet: the service's view "
                "follower records them within seconds; retry (or use --wait)"
            )
        last_index = max(int(leaf[0]) for leaf in leaves.values())
        checkpoint = ledger.latest_checkpoint(cursor)
        if checkpoint is None or checkpoint["tree_size"] <= last_index:
            covered = checkpoint["tree_size"] if checkpoint else 0
            raise NotCovered(
                f"no signed checkpoint covers the check's last event yet (it is leaf {last_index}; the latest "
                f"checkpoint covers {covered} leaves): the service signs one within "
                f"{ledger.CHECKPOINT_WITHIN.total_seconds():.0f} s of any uncovered leaf; "
                "retry (or use --wait)"
            )
        tree_size = checkpoint["tree_size"]
        ledger_root = merkle.root_at(tree_size, ledger.NodesInDatabase(cursor)).hex()
        paths = {
            position: ledger.inclusion_proof(cursor, int(leaf[0]), tree_size)["path"] for position, leaf in leaves.items()
        }
    try:
        signed = verify_checkpoint(checkpoint["jws"], root_cert)
    except InvalidCheckpoint as error:
        raise ExportError(f"the latest checkpoint does not verify against the root: {error}; run `nocert audit verify`") from None
    if signed["root_hash"] != checkpoint["root_hash"] or checkpoint["root_hash"] != ledger_root:
        raise ExportError("the latest checkpoint does not match the ledger: run `nocert audit verify`")

    officers = {event.originator_version: getattr(event, "officer", None) for event in app.check_events(check_id)}
    events = []
    for notification in notifications:
        index, _, _, _, _, at, _, digest = leaves[notification.id]
        recomputed = merkle.leaf_hash(
            event_leaf(notification.id, str(notification.originator_id), notification.originator_version, notification.topic, notification.state)
        )
        if recomputed != bytes(digest):
            raise ExportError(
                f"the event at position {notification.id} no longer gives its ledger leaf: run `nocert audit verify`"
            )
        events.append(
            {
                "index": int(index),
                "position": notification.id,
                "stream_id": str(notification.originator_id),
                "version": notification.originator_version,
                "type": notification.topic,
                "at": at,
                "officer": officers.get(notification.originator_version),
                "state_b64": None if masked else base64.b64encode(notification.state).decode("ascii"),
                "state_sha256": hashlib.sha256(notification.state).hexdigest(),
                "leaf_hash": recomputed.hex(),
                "inclusion_path": paths[notification.id],
            }
        )
    proof = None
    if check.proof is not None and check.proof.jws is not None:  # None: erased with its applicant (§14)
        sealed_by = jws.certificate_of(jws.parse_compact(check.proof.jws).header)
        proof = {
            "id": str(check.proof.id),
            "jws": None if masked else check.proof.jws,
            "certificate_chain_pem": [
                certificates.to_pem(sealed_by) if sealed_by is not None else "",
                certificates.to_pem(root_cert),
            ],
        }
    ledger_cert = jws.certificate_of(jws.parse_compact(checkpoint["jws"]).header)
    assert ledger_cert is not None  # the checkpoint verified
    bundle = {
        "format": FORMAT,
        "check_id": str(check_id),
        "exported_at": format_time(now),
        "checkpoint": checkpoint,
        "ledger_certificate_pem": certificates.to_pem(ledger_cert),
        "events": events,
        "proof": proof,
        "summary": {"covered_by_proofs": False, "note": SUMMARY_NOTE, "check": mask_check(check_document(check, now))},
        "disclosure": MASKED if masked else FULL,
    }
    note = checkpoint_note(checkpoint["tree_size"]) if checkpoint_note is not None else None
    if note is not None:
        bundle["checkpoint_note"] = note
    return bundle


def export_bundle_waiting(
    app: Any,
    database: Database,
    log: EventLog,
    root_cert: x509.Certificate,
    check_id: UUID,
    clock: Any,
    wait_seconds: float = 0.0,
    poll_seconds: float = 0.5,
    **options: Any,
) -> dict[str, Any]:
    """`export_bundle`, retried for up to `wait_seconds` while the ledger has not covered the check yet."""
    retrying = Retrying(
        retry=retry_if_exception_type(NotCovered),
        stop=stop_before_delay(wait_seconds),
        wait=wait_fixed(poll_seconds),
        reraise=True,
    )
    return retrying(lambda: export_bundle(app, database, log, root_cert, check_id, clock(), **options))


def _notification(log: EventLog, position: int) -> Any:
    found = log.read(position - 1, 1, stop=position)
    if not found or found[0].id != position:
        raise ExportError(f"the event at position {position} cannot be read")
    return found[0]


def _leaves(cursor: Any, positions: list[int]) -> dict[int, tuple[Any, ...]]:
    """The ledger view's leaves at these positions, by position."""
    found: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(positions), 200):
        chunk = positions[start : start + 200]
        marks = ", ".join("?" for _ in chunk)
        for row in cursor.execute(
            "SELECT idx, position, stream_id, version, type, at, state_sha256, leaf_hash FROM ledger_leaves "
            f"WHERE position IN ({marks})",
            chunk,
        ).fetchall():
            found[int(row[1])] = tuple(row)
    return found
