"""The ``add-checkpoint`` call of C2SP tlog-witness, without HTTP: parse, check in the specification's order,
cosign, remember.

The request body is an ``old <size>`` line, at most 63 base64 consistency-proof lines, an empty line and
the checkpoint note, every line ending in a newline. The answers, as `WitnessError` subclasses carrying
their HTTP status:

=====  ==============================================================================================
400    the body or the checkpoint is malformed, or the old size exceeds the checkpoint's size
403    no signature by a trusted key of the origin, or such a signature fails to verify
404    the checkpoint's origin is not the log this witness follows
409    the old size is not the size of the latest checkpoint cosigned for the origin (0 before the first);
       the answer's body is that size and a newline, content type ``text/x.tlog.size``
422    a size-0 checkpoint whose root is not the empty tree's, a proof sent from old size 0, a
       consistency proof that does not verify (RFC 9162 §2.1.4.2), or the same size with another root
200    the cosignature line(s), once the new checkpoint is stored
=====  ==============================================================================================

A checkpoint signed by the log that is refused as inconsistent (a smaller tree than the one cosigned, a
proof that fails, another root at the same size) is kept as evidence (`WitnessState.evidence`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from signing import merkle
from signing.note import (
    EMPTY_TREE_ROOT,
    MAX_TREE_SIZE,
    Checkpoint,
    InvalidNoteSignature,
    Note,
    NoteError,
    NoteSigner,
    UnverifiedNote,
    VerifierKey,
    open_note,
    parse_checkpoint,
    parse_note,
)
from witness.state import Cosigned, WitnessState

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]*)", re.ASCII)


class WitnessError(Exception):
    """A refused submission; `status` is its HTTP status code, the message its plain-text body."""

    status = 500


class BadRequest(WitnessError):
    status = 400


class Forbidden(WitnessError):
    status = 403


class UnknownLog(WitnessError):
    status = 404


class Conflict(WitnessError):
    """The old size is stale: `latest_size` is the size of the latest checkpoint cosigned for the origin."""

    status = 409

    def __init__(self, latest_size: int) -> None:
        super().__init__(f"{latest_size}\n")
        self.latest_size = latest_size


class Unprocessable(WitnessError):
    """Inconsistent with what was cosigned; `evidence` says why when the log may have forked or rolled back."""

    status = 422

    def __init__(self, message: str, evidence: str | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` body."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def render_add_checkpoint(old_size: int, proof: Iterable[bytes], note: str) -> bytes:
    """The request body for ``POST <prefix>/add-checkpoint``."""
    lines = [f"old {old_size}", *(base64.b64encode(node).decode("ascii") for node in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """The body's parts; raises BadRequest unless it has the specification's form."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise BadRequest("no empty line between the old size and proof lines and the checkpoint")
    lines = head.split("\n")
    match = _OLD_LINE.fullmatch(lines[0])
    if match is None or int(match.group(1)) > MAX_TREE_SIZE:
        raise BadRequest("the first line is not 'old <size>' in decimal without leading zeroes")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise BadRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
    return AddCheckpoint(int(match.group(1)), tuple(_proof_hash(line) for line in lines[1:]), note)


class Witness:
    """Cosigns checkpoints of the logs whose keys it trusts (`log_keys`; a log's origin is its key name)."""

    def __init__(self, cosigner: NoteSigner, state: WitnessState, log_keys: Sequence[VerifierKey]) -> None:
        if not log_keys:
            raise ValueError("a witness follows at least one log key")
        self.cosigner = cosigner
        self.state = state
        self.log_keys = tuple(log_keys)

    @property
    def vkey(self) -> str:
        return self.cosigner.vkey

    def add_checkpoint(self, body: bytes) -> str:
        """The cosignature line(s) for the submitted checkpoint; raises a `WitnessError` subclass."""
        request = parse_add_checkpoint(body)
        try:
            note = parse_note(request.note)
            checkpoint = parse_checkpoint(note.text)
        except NoteError as error:
            raise BadRequest(f"the checkpoint is malformed: {error}") from None
        keys = [key for key in self.log_keys if key.name == checkpoint.origin]
        if not keys:
            raise UnknownLog(f"unknown log origin {checkpoint.origin!r}")
        try:
            verified = open_note(request.note, keys)
        except (UnverifiedNote, InvalidNoteSignature) as error:
            raise Forbidden(str(error)) from None
        if request.old_size > checkpoint.size:
            self._refuse_if_rolled_back(checkpoint, note)
            raise BadRequest(f"old size {request.old_size} exceeds the checkpoint's size {checkpoint.size}")

        with self.state.updating(checkpoint.origin) as update:
            latest_size = update.latest.size if update.latest is not None else 0
            if request.old_size != latest_size:
                raise Conflict(latest_size)
            refusal = _inconsistency(request, checkpoint, update.latest)
            if refusal is None:
                cosignature = self.cosigner.signature(note.text)
                update.store(checkpoint.size, checkpoint.root_hash, Note(note.text, (*verified.verified, cosignature)).render())
        if refusal is not None:
            if refusal.evidence:  # kept after the update's transaction, which refusing rolls back
                self.state.record_evidence(checkpoint.origin, note.render(), refusal.evidence, latest_size)
            raise refusal
        return cosignature.line

    def latest(self, origin_hash: str) -> str | None:
        """The latest cosigned checkpoint of the origin whose SHA-256 hex is `origin_hash`, or None."""
        found = self.state.latest_by_origin_hash(origin_hash)
        return found.note if found is not None else None

    def _refuse_if_rolled_back(self, checkpoint: Checkpoint, note: Note) -> None:
        latest = self.state.latest(checkpoint.origin)
        if latest is not None and checkpoint.size < latest.size:
            reason = f"a smaller tree than the size {latest.size} cosigned"
            self.state.record_evidence(checkpoint.origin, note.render(), reason, latest.size)


def _inconsistency(request: AddCheckpoint, checkpoint: Checkpoint, latest: Cosigned | None) -> Unprocessable | None:
    """Why the checkpoint is not an append-only extension of the latest one cosigned, or None if it is."""
    if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_TREE_ROOT:
        return Unprocessable("a checkpoint of size 0 must have the empty tree's root hash")
    if request.old_size == 0:
        return Unprocessable("no consistency proof is sent from old size 0") if request.proof else None
    assert latest is not None  # old size == latest size > 0
    if request.old_size == checkpoint.size:
        if not hmac.compare_digest(latest.root_hash, checkpoint.root_hash):
            return Unprocessable("the root hash differs from the one cosigned at this size", "another root at a size cosigned")
        return Unprocessable("no consistency proof is sent between equal sizes") if request.proof else None
    if not merkle.verify_consistency(
        request.old_size, checkpoint.size, latest.root_hash, checkpoint.root_hash, list(request.proof)
    ):
        return Unprocessable(
            f"the consistency proof from size {request.old_size} does not verify",
            f"its proof of consistency with the tree of size {latest.size} cosigned does not verify",
        )
    return None


def _proof_hash(line: str) -> bytes:
    try:
        node = base64.b64decode(line.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        node = b""
    if len(node) != merkle.HASH_SIZE:
        raise BadRequest("a consistency proof line is not the base64 of a 32-byte hash")
    return node
