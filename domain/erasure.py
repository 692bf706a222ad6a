"""Erasure's command (API.md §14): the applicant's key is destroyed outside the domain (`privacy.keys`); the
domain records ``SubjectErased`` (no personal data) on each of the person's checks."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from domain.check import Check
from domain.repository import CachedApplication


class SubjectErasure(CachedApplication):
    def erase_subject(self, check_ids: Sequence[UUID], actor: str, erasure_id: str) -> tuple[list[Check], int]:
        """``SubjectErased`` on each of the checks not erased yet, in one save; returns those and the position."""

        def erase() -> tuple[list[Check], int]:
            erased = [check for check in (self._get(i, Check, "check") for i in check_ids) if check.erased_at is None]
            for check in erased:
                check.erase_subject(actor, erasure_id)
            return erased, self._save(*erased) if erased else 0

        return self._retrying(erase)
