"""The check's rules that need no check: its status machine (``TRANSITIONS``, replayed by the audit and the
bundle verifier) and the refusals that the aggregate and the platform both apply (API.md §4, §5, §13)."""

from __future__ import annotations

from datetime import datetime

from domain.errors import DomainError, InvalidIssuer, InvalidTransition
from domain.vocabulary import CheckStatus, Conclusion, DeclineReason, Outcome, values

OPEN_UNANSWERED = frozenset({"raised", "accepted", "info_requested"})
ANSWERED = frozenset({"replied", "declined"})
TERMINAL = frozenset({"withdrawn", "closed"})

# Event type -> (the party that may record it, statuses it may follow, status it leads to or None to keep).
TRANSITIONS: dict[str, tuple[str, frozenset[str], str | None]] = {
    "Accepted": ("issuer", frozenset({"raised"}), "accepted"),
    "InfoRequested": ("issuer", frozenset({"accepted"}), "info_requested"),
    "InfoSupplied": ("approver", frozenset({"info_requested"}), "accepted"),
    "Forwarded": ("issuer", frozenset({"raised", "accepted"}), "raised"),
    "Replied": ("issuer", frozenset({"raised", "accepted"}), "replied"),
    "Declined": ("issuer", OPEN_UNANSWERED, "declined"),
    "Withdrawn": ("approver", OPEN_UNANSWERED, "withdrawn"),
    "Closed": ("approver", OPEN_UNANSWERED | ANSWERED, "closed"),
    "ProofRevoked": ("sealer", frozenset({"replied", "closed"}), None),
    "Overdue": ("platform", OPEN_UNANSWERED, None),
    "Urged": ("approver", OPEN_UNANSWERED, None),
}
PLATFORM = "platform"  # the actor of the events the platform records itself (``Overdue``)
STATUSES = values(CheckStatus)
CONCLUSIONS = values(Conclusion)
DECLINE_REASONS = values(DeclineReason)
OUTCOMES = values(Outcome)

def forward_refusal(issuer: str | None, to: str) -> DomainError | None:
    """A check is forwarded to another issuer than the one it is addressed to."""
    return InvalidIssuer("a check is forwarded to another issuer") if to == issuer else None


def revocation_refusal(has_proof: bool, revoked: bool) -> DomainError | None:
    """A proof is revoked once, and only where there is one."""
    if not has_proof:
        return InvalidTransition("the check has no proof")
    if revoked:
        return InvalidTransition("the proof is already revoked")
    return None


def exemption_refusal(status: str | None, conclusion: str | None, proof_valid: bool) -> DomainError | None:
    """A check closes ``exempted`` only after a confirmed reply whose proof is valid at closing (§4, §5)."""
    if status == "replied" and conclusion == "confirmed" and proof_valid:
        return None
    return InvalidTransition("exempted needs a confirmed reply with a proof that is valid now")


def overdue_refusal(status: str | None, due_at: datetime, overdue_for: datetime | None, now: datetime) -> DomainError | None:
    """``Overdue`` is recorded once per due time, for an unanswered check past it (§13)."""
    if status not in OPEN_UNANSWERED:
        return InvalidTransition(f"not allowed from status {status!r}")
    if now <= due_at:
        return InvalidTransition("the check is not past its due time")
    if overdue_for == due_at:
        return InvalidTransition("the check is already overdue for this due time")
    return None


def _refuse(refusal: DomainError | None) -> None:
    if refusal is not None:
        raise refusal
