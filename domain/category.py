"""Proof categories (证明事项): what a citizen used to have to bring, and how it can be checked instead."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.department import NAMESPACE
from domain.errors import InvalidInput
from domain.ports import ClaimsValidator
from domain.vocabulary import CategoryStatus, Mode, values

MODES = values(Mode)
STATUSES = values(CategoryStatus)
CHANGEABLE = ("name", "modes", "sla_hours", "claims_schema")
MAX_SLA_HOURS = 24 * 365 * 10  # ten years: beyond that a due time is no SLA (and overflows datetimes)


class Category(Aggregate):
    TOPIC = "nocert:category"

    class Event(Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "nocert:category:Created"
        code: str
        name: str
        issuer_kind: str
        modes: list[str]
        sla_hours: float
        claims_schema: dict[str, Any] | None

    class Changed(Event):
        TOPIC = "nocert:category:Changed"
        changes: dict[str, Any]

        def apply(self, category: Category) -> None:
            for field, value in self.changes.items():
                setattr(category, field, value)

    class Retired(Event):
        TOPIC = "nocert:category:Retired"

        def apply(self, category: Category) -> None:
            category.status = "retired"

    class Reactivated(Event):
        TOPIC = "nocert:category:Reactivated"

        def apply(self, category: Category) -> None:
            category.status = "active"

    def __init__(
        self,
        code: str,
        name: str,
        issuer_kind: str,
        modes: list[str],
        sla_hours: float,
        claims_schema: dict[str, Any] | None,
    ) -> None:
        self.code = code
        self.name = name
        self.issuer_kind = issuer_kind
        self.modes = list(modes)
        self.sla_hours = sla_hours
        self.claims_schema = claims_schema
        self.status = "active"

    @staticmethod
    @lru_cache(maxsize=4096)  # pure, and asked for on every request (uuid5 hashes with SHA-1)
    def stream_id(code: str) -> UUID:
        return uuid5(NAMESPACE, f"category:{code}")

    @classmethod
    def create(
        cls,
        code: str,
        name: str,
        issuer_kind: str,
        modes: list[str],
        sla_hours: float,
        claims_schema: dict[str, Any] | None,
    ) -> Category:
        return cls._create(
            cls.Created,
            id=cls.stream_id(code),
            code=code,
            name=name,
            issuer_kind=issuer_kind,
            modes=list(modes),
            sla_hours=sla_hours,
            claims_schema=claims_schema,
        )

    @staticmethod
    def validate(fields: Mapping[str, Any], claims: ClaimsValidator) -> None:
        """Refuses (``validation_error``) modes, an SLA or a claims schema a category cannot have."""
        if "modes" in fields:
            modes = fields["modes"]
            if len(set(modes)) != len(modes) or not set(modes) <= set(MODES):
                raise InvalidInput(f"modes must be distinct values of {list(MODES)}")
        if "sla_hours" in fields and not 0 < fields["sla_hours"] <= MAX_SLA_HOURS:
            raise InvalidInput(f"sla_hours must be a number greater than 0 and at most {MAX_SLA_HOURS}")
        if fields.get("claims_schema") is not None:
            claims.check_schema(fields["claims_schema"])

    @staticmethod
    def validate_status(status: str) -> None:
        if status not in STATUSES:
            raise InvalidInput("status must be active or retired")

    def change(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - set(CHANGEABLE)
        if unknown:
            raise InvalidInput(f"cannot change {sorted(unknown)}")
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if effective:
            self.trigger_event(self.Changed, changes=effective)

    def set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.trigger_event(self.Retired if status == "retired" else self.Reactivated)

    @property
    def sla_seconds(self) -> float:
        return self.sla_hours * 3600.0

    @property
    def online(self) -> bool:
        """Active and checkable online (the ``collaboration`` mode): new checks may be raised."""
        return self.status == "active" and "collaboration" in self.modes
