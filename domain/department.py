"""Departments: the government bodies that use the platform, their API keys and seal certificates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import Conflict, InvalidInput, InvalidOfficer, NoSigningKey, NotFound
from domain.identifiers import validate_region
from domain.vocabulary import DepartmentStatus, Role, values

ROLES = values(Role)
STATUSES = values(DepartmentStatus)
NAMESPACE = uuid5(NAMESPACE_URL, "urn:nocert")
DEPARTMENT_ID = re.compile(r"^[a-z0-9-]{3,64}$")
OFFICER_LOGIN = re.compile(r"^[a-z0-9._-]{3,64}$")


@dataclass
class ApiKey:
    key_id: str
    key_hash: str
    revoked: bool = False


@dataclass
class Seal:
    """A seal certificate of the department. Private keys never enter the event store."""

    kid: str
    certificate_pem: str
    not_before: datetime
    not_after: datetime
    registered_at: datetime
    retired: bool = False
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        return "retired" if self.retired else "active"


@dataclass
class OfficerRecord:
    """An officer of the department (API.md §12). Its credentials live outside the event store."""

    login: str
    name: str
    added_at: datetime
    removed_at: datetime | None = None

    @property
    def status(self) -> str:
        return "active" if self.removed_at is None else "removed"


class Department(Aggregate):
    TOPIC = "nocert:department"

    class Event(Aggregate.Event):
        pass

    class Registered(Event, Aggregate.Created):
        TOPIC = "nocert:department:Registered"
        department_id: str
        name: str
        uscc: str
        roles: list[str]
        kind: str
        region: str

    class ApiKeyIssued(Event):
        TOPIC = "nocert:department:ApiKeyIssued"
        key_id: str
        key_hash: str

        def apply(self, department: Department) -> None:
            department.api_keys[self.key_id] = ApiKey(self.key_id, self.key_hash)

    class ApiKeyRevoked(Event):
        TOPIC = "nocert:department:ApiKeyRevoked"
        key_id: str

        def apply(self, department: Department) -> None:
            department.api_keys[self.key_id].revoked = True

    class SealRegistered(Event):
        """A new seal certificate; the previous current one is retired."""

        TOPIC = "nocert:department:SealRegistered"
        kid: str
        certificate_pem: str
        not_before: datetime
        not_after: datetime

        def apply(self, department: Department) -> None:
            for seal in department.seals.values():
                seal.retired = True
            department.seals[self.kid] = Seal(
                self.kid, self.certificate_pem, self.not_before, self.not_after, self.timestamp
            )
            department.current_kid = self.kid

    class SealRevoked(Event):
        TOPIC = "nocert:department:SealRevoked"
        kid: str
        reason: str
        effective_at: datetime

        def apply(self, department: Department) -> None:
            seal = department.seals[self.kid]
            seal.revoked_at = self.effective_at
            seal.revocation_reason = self.reason

    class Renamed(Event):
        TOPIC = "nocert:department:Renamed"
        name: str

        def apply(self, department: Department) -> None:
            department.name = self.name

    class Moved(Event):
        """The department's region changed; checks raised afterwards see the new one."""

        TOPIC = "nocert:department:Moved"
        region: str

        def apply(self, department: Department) -> None:
            department.region = self.region
            department.moves.append((self.timestamp, self.region))

    class Deactivated(Event):
        TOPIC = "nocert:department:Deactivated"

        def apply(self, department: Department) -> None:
            department.status = "inactive"

    class Reactivated(Event):
        TOPIC = "nocert:department:Reactivated"

        def apply(self, department: Department) -> None:
            department.status = "active"

    class OfficerAdded(Event):
        TOPIC = "nocert:department:OfficerAdded"
        login: str
        name: str

        def apply(self, department: Department) -> None:
            department.officers[self.login] = OfficerRecord(self.login, self.name, self.timestamp)

    class OfficerRemoved(Event):
        TOPIC = "nocert:department:OfficerRemoved"
        login: str

        def apply(self, department: Department) -> None:
            department.officers[self.login].removed_at = self.timestamp

    # Pinned name for the library's creation event, so it is not redefined without a topic.
    Created = Registered

    def __init__(
        self, department_id: str, name: str, uscc: str, roles: list[str], kind: str, region: str
    ) -> None:
        self.department_id = department_id
        self.name = name
        self.uscc = uscc
        self.roles = list(roles)
        self.kind = kind
        self.region = region
        self.api_keys: dict[str, ApiKey] = {}
        self.seals: dict[str, Seal] = {}
        self.current_kid: str | None = None
        self.status = "active"
        self.first_region = region
        # (since, region) of every move, oldest first: see ``region_at``.
        self.moves: list[tuple[datetime, str]] = []
        self.officers: dict[str, OfficerRecord] = {}

    @staticmethod
    def is_valid_id(department_id: object) -> bool:
        return isinstance(department_id, str) and DEPARTMENT_ID.fullmatch(department_id) is not None

    @staticmethod
    def validate(department_id: str, roles: list[str]) -> None:
        """Refuses (``validation_error``) an id or roles a department cannot have."""
        if not Department.is_valid_id(department_id):
            raise InvalidInput("id must be 3-64 characters of a-z, 0-9 and -")
        if not roles or len(set(roles)) != len(roles) or not set(roles) <= set(ROLES):
            raise InvalidInput(f"roles must be distinct values of {list(ROLES)}")
        if Role.CITIZEN_PORTAL in roles and len(roles) > 1:
            raise InvalidInput("the role citizen_portal cannot be combined with another role")

    @staticmethod
    @lru_cache(maxsize=4096)  # pure, and asked for on every request (uuid5 hashes with SHA-1)
    def stream_id(department_id: str) -> UUID:
        return uuid5(NAMESPACE, f"department:{department_id}")

    @classmethod
    def register(
        cls, department_id: str, name: str, uscc: str, roles: list[str], kind: str, region: str
    ) -> Department:
        return cls._create(
            cls.Registered,
            id=cls.stream_id(department_id),
            department_id=department_id,
            name=name,
            uscc=uscc,
            roles=list(roles),
            kind=kind,
            region=region,
        )

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def region_at(self, moment: datetime) -> str:
        """The region the department had at ``moment``: a check counts under its approver's region when
        it was raised (a region change applies to checks raised afterwards, API.md §10)."""
        return region_at(self.first_region, self.moves, moment)

    def change(self, name: str | None, region: str | None, status: str | None) -> None:
        """Records one event per field that changes (none when nothing does)."""
        if region is not None:
            validate_region(region)
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {list(STATUSES)}")
        if name is not None and name != self.name:
            self.trigger_event(self.Renamed, name=name)
        if region is not None and region != self.region:
            self.trigger_event(self.Moved, region=region)
        if status is not None and status != self.status:
            self.trigger_event(self.Reactivated if status == "active" else self.Deactivated)

    def issue_api_key(self, key_id: str, key_hash: str) -> None:
        self.trigger_event(self.ApiKeyIssued, key_id=key_id, key_hash=key_hash)

    def revoke_api_key(self, key_id: str) -> None:
        key = self.api_keys.get(key_id)
        if key is None or key.revoked:
            raise NotFound.of("API key")
        self.trigger_event(self.ApiKeyRevoked, key_id=key_id)

    def active_key_hash(self, key_id: str) -> str | None:
        key = self.api_keys.get(key_id)
        return None if key is None or key.revoked else key.key_hash

    def register_seal(self, kid: str, certificate_pem: str, not_before: datetime, not_after: datetime) -> None:
        self.require_seal_holder()
        self.trigger_event(
            self.SealRegistered,
            kid=kid,
            certificate_pem=certificate_pem,
            not_before=not_before,
            not_after=not_after,
        )

    def revoke_seal(self, kid: str, reason: str, effective_at: datetime) -> None:
        self.require_seal_holder()
        seal = self.seals.get(kid)
        if seal is None:
            raise NotFound.of("key")
        if seal.revoked_at is not None and seal.revoked_at <= effective_at:
            return  # already revoked from that time or earlier: a later revocation changes nothing
        # A first revocation, or one moved earlier (a leak found out later): it takes effect from then.
        self.trigger_event(self.SealRevoked, kid=kid, reason=reason, effective_at=effective_at)

    def current_seal(self, now: datetime) -> Seal:
        """The seal a reply is signed with, or ``no_signing_key`` when it is missing or revoked."""
        seal = self.seals.get(self.current_kid) if self.current_kid else None
        if seal is None or seal.status(now) == "revoked":
            raise NoSigningKey("the department has no usable seal key; rotate its key first")
        return seal

    def require_seal_holder(self) -> None:
        """Only issuers hold seal keys (``conflict`` for any other department)."""
        if not self.has_role("issuer"):
            raise Conflict("only departments with the issuer role hold seal keys")

    # -- officers (API.md §12) -------------------------------------------------------------------

    @staticmethod
    def is_valid_login(login: object) -> bool:
        return isinstance(login, str) and OFFICER_LOGIN.fullmatch(login) is not None

    def add_officer(self, login: str, name: str) -> None:
        """A new officer. A login stays taken once used, even after its officer was removed, so that the
        ``officer`` of recorded events always names one person."""
        if not self.is_valid_login(login):
            raise InvalidInput("login must be 3-64 characters of a-z, 0-9, '.', '_' and '-'")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name must be a non-empty string")
        if login in self.officers:
            raise Conflict(f"the login {login!r} is taken in this department")
        self.trigger_event(self.OfficerAdded, login=login, name=name)

    def remove_officer(self, login: str) -> None:
        officer = self.officers.get(login)
        if officer is None or officer.removed_at is not None:
            raise NotFound.of("officer")
        self.trigger_event(self.OfficerRemoved, login=login)

    def has_active_officer(self, login: str) -> bool:
        officer = self.officers.get(login)
        return officer is not None and officer.removed_at is None

    def require_officer(self, login: str | None) -> str | None:
        """The officer a command names for this department: None (none named) or an active one of it."""
        if login is not None and not self.has_active_officer(login):
            raise InvalidOfficer(f"{login!r} is no active officer of {self.department_id}")
        return login


def region_at(first_region: str, moves: list[tuple[datetime, str]], moment: datetime) -> str:
    """The region in force at ``moment``, given the first one and the later moves (oldest first)."""
    region = first_region
    for since, moved_to in moves:
        if since > moment:
            break
        region = moved_to
    return region
