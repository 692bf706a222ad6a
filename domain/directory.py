"""The directory of departments and the catalogue of categories: the platform's two small indexes.

Each is one stream saved in the same transaction as the department or category it lists, so a
duplicate USCC or code is refused atomically and routing sees every department at once (its
optimistic version serialises concurrent registrations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import uuid5

from eventsourcing.domain import Aggregate

from domain.department import NAMESPACE
from domain.errors import AmbiguousRoute, Conflict, InvalidIssuer, NoRoute
from domain.identifiers import region_prefix


@dataclass(frozen=True)
class Listing:
    department_id: str
    uscc: str
    roles: tuple[str, ...]
    kind: str
    region: str
    active: bool = True

    def is_issuer(self, kind: str) -> bool:
        """An issuer of ``kind``, whether active or not."""
        return "issuer" in self.roles and self.kind == kind


class Directory(Aggregate):
    TOPIC = "nocert:directory"
    STREAM_ID = uuid5(NAMESPACE, "directory")

    class Event(Aggregate.Event):
        pass

    class Opened(Event, Aggregate.Created):
        TOPIC = "nocert:directory:Opened"

    class Listed(Event):
        TOPIC = "nocert:directory:Listed"
        department_id: str
        uscc: str
        roles: list[str]
        kind: str
        region: str

        def apply(self, directory: Directory) -> None:
            directory.listings[self.department_id] = Listing(
                self.department_id, self.uscc, tuple(self.roles), self.kind, self.region
            )

    class Relisted(Event):
        """A listed department moved or changed status (API.md §10); routing sees it at once."""

        TOPIC = "nocert:directory:Relisted"
        department_id: str
        region: str
        active: bool

        def apply(self, directory: Directory) -> None:
            listing = directory.listings[self.department_id]
            directory.listings[self.department_id] = replace(listing, region=self.region, active=self.active)

    # Pinned name for the library's creation event, so it is not redefined without a topic.
    Created = Opened

    def __init__(self) -> None:
        self.listings: dict[str, Listing] = {}

    def relist(self, department_id: str, region: str, active: bool) -> None:
        """Records the department's routing facts when they differ from its listing."""
        listing = self.listings[department_id]
        if (listing.region, listing.active) != (region, active):
            self.trigger_event(self.Relisted, department_id=department_id, region=region, active=active)

    @classmethod
    def open(cls) -> Directory:
        return cls._create(cls.Opened, id=cls.STREAM_ID)

    def list(self, department_id: str, uscc: str, roles: list[str], kind: str, region: str) -> None:
        if department_id in self.listings:
            raise Conflict(f"department {department_id!r} exists")
        if any(listing.uscc == uscc for listing in self.listings.values()):
            raise Conflict("a department with this unified social credit code exists")
        self.trigger_event(
            self.Listed, department_id=department_id, uscc=uscc, roles=list(roles), kind=kind, region=region
        )

    def route(self, kind: str, applicant_region: str) -> str:
        """The issuer of ``kind`` whose region prefix is the longest prefix of the applicant's region."""
        candidates = [
            (len(region_prefix(listing.region)), listing.department_id)
            for listing in self.listings.values()
            if listing.is_issuer(kind)
            and listing.active
            and applicant_region.startswith(region_prefix(listing.region))
        ]
        if not candidates:
            raise NoRoute(f"no {kind} issuer covers region {applicant_region}")
        longest = max(length for length, _ in candidates)
        best = sorted(dept for length, dept in candidates if length == longest)
        if len(best) > 1:
            raise AmbiguousRoute(f"several {kind} issuers cover region {applicant_region}: {best}")
        return best[0]

    def require_issuer(self, department_id: str, kind: str) -> None:
        listing = self.listings.get(department_id)
        if listing is None or not listing.is_issuer(kind):
            raise InvalidIssuer(f"{department_id!r} is no {kind} issuer")
        if not listing.active:
            raise InvalidIssuer(f"{department_id!r} is inactive")


class Catalogue(Aggregate):
    TOPIC = "nocert:catalogue"
    STREAM_ID = uuid5(NAMESPACE, "catalogue")

    class Event(Aggregate.Event):
        pass

    class Opened(Event, Aggregate.Created):
        TOPIC = "nocert:catalogue:Opened"

    class Listed(Event):
        TOPIC = "nocert:catalogue:Listed"
        code: str

        def apply(self, catalogue: Catalogue) -> None:
            catalogue.codes.append(self.code)

    # Pinned name for the library's creation event, so it is not redefined without a topic.
    Created = Opened

    def __init__(self) -> None:
        self.codes: list[str] = []

    @classmethod
    def open(cls) -> Catalogue:
        return cls._create(cls.Opened, id=cls.STREAM_ID)

    def list(self, code: str) -> None:
        if code in self.codes:
            raise Conflict(f"category {code!r} exists")
        self.trigger_event(self.Listed, code=code)
