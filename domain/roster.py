"""Officers of departments (API.md §12), as commands of the platform: the roster lives on the
`Department` aggregate (events ``OfficerAdded`` and ``OfficerRemoved``); credentials never enter the
event store. `Roster.acting` is the one check of the officer a department names for a command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import Aggregate

from domain.check import Check
from domain.department import Department, OfficerRecord
from domain.ports import Attachment


class Roster:
    """Mixed into `domain.platform.Platform`, which provides ``department`` and ``_save``."""

    def department(self, department_id: str) -> Department:
        raise NotImplementedError

    def _save(self, *aggregates: Aggregate, extra: Sequence[Attachment] = ()) -> int:
        raise NotImplementedError

    def add_officer(
        self, department_id: str, login: str, name: str, attachments: Sequence[Attachment] = ()
    ) -> tuple[OfficerRecord, int]:
        """Records a new officer; ``attachments`` (its credentials, kept outside the events) are written
        in the same transaction, so there is never an officer without them or the reverse."""
        department = self.department(department_id)
        department.add_officer(login, name)
        return department.officers[login], self._save(department, extra=attachments)

    def remove_officer(self, department_id: str, login: str, attachments: Sequence[Attachment] = ()) -> int:
        department = self.department(department_id)
        department.remove_officer(login)
        return self._save(department, extra=attachments)

    def officers(self, department_id: str) -> list[OfficerRecord]:
        """The department's officers, removed ones included, by login."""
        department = self.department(department_id)
        return [department.officers[login] for login in sorted(department.officers)]

    def acting(self, actor: str, officer: str | None) -> dict[str, Any]:
        """The ``officer`` keyword of a command by department ``actor``: refused (``invalid_officer``)
        unless it is None or an active officer of that department."""
        if officer is not None:
            self.department(actor).require_officer(officer)
        return {"officer": officer}

    def acting_on(self, check: Check, event_type: str, actor: str, officer: str | None) -> dict[str, Any]:
        """`acting` for a command on ``check``, after the check's party rule (403 before 422, API.md §1)."""
        check._require_party(event_type, actor)
        return self.acting(actor, officer)
