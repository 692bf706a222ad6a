"""The proof a reply seals (API.md §5) as the check records it, its id, and its validity at a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.timefmt import format_time
from domain.vocabulary import Conclusion, values

PAYLOAD_TYPE = "nocert.proof.v1"

# A check has at most one proof, so a proof id is its check id with these bits flipped (an
# involution that keeps the UUID version and variant): a proof id leads to its stream without an index.
_PROOF_MASK = 0x5A5A5A5A_5A5A_0A5A_3A5A_5A5A5A5A5A5A


def proof_id_of(check_id: UUID) -> UUID:
    return UUID(int=check_id.int ^ _PROOF_MASK)


def check_id_of_proof(proof_id: UUID) -> UUID:
    return UUID(int=proof_id.int ^ _PROOF_MASK)


@dataclass
class Proof:
    """The sealed proof of a check's reply, and its revocation."""

    id: UUID
    jws: str | None  # None once the applicant was erased (API.md §14)
    kid: str
    sealer: str
    conclusion: str
    issued_at: datetime
    valid_until: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at is not None else "valid"

    @staticmethod
    def lapses(
        *,
        now: datetime,
        issued_at: datetime | None,
        valid_until: datetime | None,
        revoked: bool,
        key_revoked_at: datetime | None,
    ) -> set[str]:
        """The §5 rules of time and revocation that fail at `now`: ``key_revoked`` (its key was revoked at or
        before its issue, or at all when the issue time is unknown), ``proof_revoked``, and ``proof_expired``
        (`now` is at or past `valid_until`, or that is unknown). Used alike for a recorded proof (`valid_at`)
        and for a JWS being verified (`signing.proofs.verify_proof`)."""
        lapsed = set()
        if key_revoked_at is not None and (issued_at is None or key_revoked_at <= issued_at):
            lapsed.add("key_revoked")
        if revoked:
            lapsed.add("proof_revoked")
        if valid_until is None or now >= valid_until:
            lapsed.add("proof_expired")
        return lapsed

    def valid_at(self, now: datetime, key_revoked_at: datetime | None) -> bool:
        """Whether this proof is valid at `now` (§5), its key having been revoked at `key_revoked_at`."""
        return not Proof.lapses(
            now=now,
            issued_at=self.issued_at,
            valid_until=self.valid_until,
            revoked=self.revoked_at is not None,
            key_revoked_at=key_revoked_at,
        )


def build_proof_payload(
    *,
    proof_id: str,
    check_id: str,
    category: str,
    matter: Mapping[str, Any],
    issuer: Mapping[str, Any],
    requester: Mapping[str, Any],
    subject: Mapping[str, Any],
    claims: Mapping[str, Any],
    conclusion: str,
    statements: Mapping[str, Any],
    issued_at: datetime,
    valid_until: datetime,
) -> dict[str, Any]:
    """The payload of a proof, with its fields in the contract's order."""
    if conclusion not in values(Conclusion):
        raise ValueError(f"unknown conclusion {conclusion!r}")
    if valid_until <= issued_at:
        raise ValueError("a proof must be valid for some time after it is issued")
    return {
        "type": PAYLOAD_TYPE,
        "id": proof_id,
        "check_id": check_id,
        "category": category,
        "matter": dict(matter),
        "issuer": dict(issuer),
        "requester": dict(requester),
        "subject": dict(subject),
        "claims": dict(claims),
        "conclusion": conclusion,
        "statements": dict(statements),
        "issued_at": format_time(issued_at),
        "valid_until": format_time(valid_until),
    }
