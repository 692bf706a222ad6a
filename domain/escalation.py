"""The platform's escalation commands (督办, API.md §13): an approver urges, the platform records
``Overdue``. A part of `domain.platform.Platform`, kept apart so that each module stays small."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.check import Check
from domain.errors import ConcurrentUpdate, InvalidInput
from domain.repository import CachedApplication
from domain.roster import Roster

NOTE_MAX = 2000


class Escalation(CachedApplication, Roster):
    """A part of `Platform`, which gives `_current` and `check` (the stubs below are overridden)."""

    def _current(self, check: Check | UUID) -> Check:
        raise NotImplementedError

    def check(self, check_id: UUID, version: int | None = None) -> Check:
        raise NotImplementedError

    def urge(self, check: Check | UUID, actor: str, note: str, officer: str | None = None) -> tuple[Check, int]:
        if not isinstance(note, str) or len(note) > NOTE_MAX:
            raise InvalidInput(f"note must be a text of at most {NOTE_MAX} characters")
        check = self._current(check)
        check.urge(actor, note, **self.acting_on(check, "Urged", actor, officer))
        return check, self._save(check)

    def record_overdue(self, check_id: UUID, now: datetime) -> int | None:
        """Records ``Overdue`` on the check if it is past its due time at ``now`` and none was recorded
        for that due time; returns the position, or None when there was nothing to record (already
        recorded, perhaps by another process a moment ago, or the check moved on)."""
        check = self.check(check_id)
        if not check.overdue_pending(now):
            return None
        check.record_overdue(now)
        try:
            return self._save(check)
        except ConcurrentUpdate:  # a command (or another timer) changed it first: the next tick looks again
            return None
