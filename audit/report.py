"""What ``nocert audit verify`` reports (API.md §8): problems of a stable kind, at the global position they
concern, and the counts of what was checked."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "leaf_mismatch",
    "checkpoint_mismatch",
    "checkpoint_signature",
    "undecodable_event",
    "invalid_transition",
    "version_gap",
    "proof_invalid",
    "position_order",
    "rollback",
)
"""Every problem kind `audit.verify.verify_ledger` reports (stable strings of the command's output)."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: events scanned so far and the log's size when the audit started."""


@dataclass(frozen=True)
class Problem:
    position: int | None
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}

    def line(self) -> str:
        return f"position {self.position if self.position is not None else '-'}: {self.kind}: {self.detail}"


@dataclass
class AuditReport:
    events: int = 0
    checkpoints: int = 0
    proofs: int = 0
    erased_proofs: int = 0  # proofs whose applicant was erased (API.md §14): their JWS is gone, not verified
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "proofs": self.proofs,
            "erased_proofs": self.erased_proofs,
            "problems": [problem.to_dict() for problem in self.problems],
        }

    def summary(self) -> str:
        counted = f"{self.events} events, {self.checkpoints} checkpoints, {self.proofs} proofs"
        if self.erased_proofs:
            counted += f" (and {self.erased_proofs} erased proofs)"
        if self.ok:
            return f"audit: OK: {counted} checked, no problem found"
        return f"audit: FAILED: {counted} checked, {len(self.problems)} problem(s)"


class Findings:
    """The problems found so far, in the order found, shared by the parts of one audit."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, position: int | None, kind: str, detail: str) -> int:
        """Records a problem; returns its index (for `amend`)."""
        self.problems.append(Problem(position, kind, detail))
        return len(self.problems) - 1

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    def amend(self, index: int, detail: str) -> None:
        """Replaces the detail of the problem at `index` (a run of positions is told once it ends)."""
        problem = self.problems[index]
        self.problems[index] = Problem(problem.position, problem.kind, detail)

    def in_log_order(self) -> list[Problem]:
        """Problems by position; those without one (whole-ledger problems) last, in the order found."""
        return sorted(self.problems, key=lambda problem: (problem.position is None, problem.position or 0))
