"""The nocert application: every command of the platform, one global event order.

Every command returns the global position of the last event it recorded, so that callers can
read their writes from asynchronously updated views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.category import Category
from domain.check import Check
from domain.check_reads import CheckReads
from domain.check_rules import CONCLUSIONS, DECLINE_REASONS, OUTCOMES
from domain.credentials import IssuedKey, key_matches, key_owner, new_api_key
from domain.department import Department, Seal
from domain.directory import Catalogue, Directory
from domain.erasure import SubjectErasure
from domain.errors import CategoryUnavailable, ConcurrentUpdate, InvalidInput, NotFound, UnknownCategory
from domain.escalation import Escalation
from domain.identifiers import validate_id_number, validate_region, validate_uscc
from domain.ports import ClaimsValidator, SaveHook, Sealer
from domain.proof import build_proof_payload, proof_id_of
from domain.roster import Roster
from domain.subscription import SubscriptionCommands
from domain.timefmt import utcnow

CheckRef = Check | UUID  # what a check command acts on: the check's id, or the check just read
Found = TypeVar("Found", bound=Aggregate)
Result = TypeVar("Result")


class Platform(Escalation, SubscriptionCommands, SubjectErasure, Roster, CheckReads):
    """Departments (with their officers, `Roster`), categories and checks (escalation: `Escalation`; webhooks:
    `SubscriptionCommands`; erasure: `SubjectErasure`). ``sealer`` and ``claims`` come from the composition
    root. Check commands take the ``officer`` acting for the department (§12)."""

    name = "nocert"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        sealer: Sealer,
        claims: ClaimsValidator,
        clock: Callable[[], datetime] = utcnow,
        save_hooks: Sequence[SaveHook] = (),
    ) -> None:
        super().__init__(env)
        self.sealer = sealer
        self.claims = claims
        self.clock = clock
        self.save_hooks = list(save_hooks)

    def cached_check(self, check_id: UUID) -> Check | None:
        """The check as this process last saw it, without a query: only for a command that then saves it
        (a stale copy makes the save fail as a conflict; read it afresh with `check` and decide again)."""
        cached = self.caching.cached(check_id)
        return cached if isinstance(cached, Check) else None

    def directory(self) -> Directory:
        try:
            return self.repository.get(Directory.STREAM_ID)
        except AggregateNotFoundError:
            return Directory.open()

    def catalogue(self) -> Catalogue:
        try:
            return self.repository.get(Catalogue.STREAM_ID)
        except AggregateNotFoundError:
            return Catalogue.open()

    # -- departments --------------------------------------------------------------------------

    def department(self, department_id: str) -> Department:
        if not Department.is_valid_id(department_id):
            raise NotFound.of("department")
        return self._get(Department.stream_id(department_id), Department, "department")

    def register_department(
        self, department_id: str, name: str, uscc: str, roles: list[str], kind: str, region: str
    ) -> tuple[Department, IssuedKey, int]:
        Department.validate(department_id, roles)
        uscc = validate_uscc(uscc)
        validate_region(region)

        def register() -> tuple[Department, IssuedKey, int]:
            directory = self.directory()
            directory.list(department_id, uscc, roles, kind, region)
            department = Department.register(department_id, name, uscc, roles, kind, region)
            issued, key_hash = new_api_key(department_id)
            department.issue_api_key(issued.api_key_id, key_hash)
            if department.has_role("issuer"):
                self._register_new_seal(department)
            return department, issued, self._save(directory, department)

        return self._retrying(register)

    def _register_new_seal(self, department: Department) -> Seal:
        certificate = self.sealer.create_seal(department.department_id, department.name, department.uscc)
        department.register_seal(
            certificate.kid, certificate.certificate_pem, certificate.not_before, certificate.not_after
        )
        return department.seals[certificate.kid]

    def change_department(
        self, department_id: str, *, name: str | None = None, region: str | None = None, status: str | None = None
    ) -> tuple[Department, int | None]:
        """Renames, moves, deactivates or re-activates a department (API.md §10): one event per change, saved
        with the directory's listing so routing sees it at once. None when nothing changed."""

        def change() -> tuple[Department, int | None]:
            department = self.department(department_id)
            department.change(name, region, status)
            if not department.pending_events:
                return department, None
            directory = self.directory()
            directory.relist(department_id, department.region, department.is_active)
            return department, self._save(directory, department)

        return self._retrying(change)

    def issue_api_key(self, department_id: str) -> tuple[IssuedKey, int]:
        department = self.department(department_id)
        issued, key_hash = new_api_key(department_id)
        department.issue_api_key(issued.api_key_id, key_hash)
        return issued, self._save(department)

    def revoke_api_key(self, department_id: str, key_id: str) -> int:
        department = self.department(department_id)
        department.revoke_api_key(key_id)
        return self._save(department)

    def authenticate(self, api_key: str) -> Department | None:
        """The department holding this live key, compared in constant time; None otherwise."""
        owner = key_owner(api_key)
        if owner is None:
            return None
        department_id, key_id = owner
        if not Department.is_valid_id(department_id):
            return None
        department = self._read(Department.stream_id(department_id)).get(Department.stream_id(department_id))
        if not isinstance(department, Department):  # read only (a cache entry): never changed here
            return None
        expected = department.active_key_hash(key_id)
        if expected is None or not key_matches(expected, api_key):
            return None
        return department if department.is_active else None  # an inactive department's keys answer 401

    def rotate_seal(self, department_id: str) -> tuple[Seal, int]:
        department = self.department(department_id)
        department.require_seal_holder()  # before a key is made for it
        seal = self._register_new_seal(department)
        position = self._save(department)
        # Only once the rotation is recorded: every earlier key (a retirement that failed before
        # included) leaves the service's reach, so that nothing can seal with it any more (#11.8).
        for kid in department.seals:
            if kid != seal.kid:
                self.sealer.retire(kid)
        return seal, position

    def revoke_seal(
        self, department_id: str, kid: str, reason: str, effective_at: datetime | None
    ) -> tuple[Seal, int]:
        department = self.department(department_id)
        department.revoke_seal(kid, reason, effective_at or self.clock())
        return department.seals[kid], self._save(department)

    # -- categories ---------------------------------------------------------------------------

    def category(self, code: str) -> Category:
        if not isinstance(code, str) or not code:
            raise NotFound.of("category")
        return self._get(Category.stream_id(code), Category, "category")

    def create_category(
        self,
        code: str,
        name: str,
        issuer_kind: str,
        modes: list[str],
        sla_hours: float,
        claims_schema: dict[str, Any] | None,
    ) -> tuple[Category, int]:
        Category.validate({"modes": modes, "sla_hours": sla_hours, "claims_schema": claims_schema}, self.claims)

        def create() -> tuple[Category, int]:
            catalogue = self.catalogue()
            catalogue.list(code)
            category = Category.create(code, name, issuer_kind, modes, sla_hours, claims_schema)
            return category, self._save(catalogue, category)

        return self._retrying(create)

    def change_category(self, code: str, changes: dict[str, Any], status: str | None) -> tuple[Category, int]:
        category = self.category(code)
        Category.validate(changes, self.claims)
        if status is not None:
            Category.validate_status(status)
        category.change(changes)
        if status is not None:
            category.set_status(status)
        return category, self._save(category)

    # -- checks -------------------------------------------------------------------------------

    def check(self, check_id: UUID, version: int | None = None) -> Check:
        check = self._get(check_id, Check, "check", version)
        if version is not None and check.version != version:
            # The store answers a version beyond the last with the last one; the contract says 404.
            raise NotFound.of("check version")
        return check

    def _current(self, check: CheckRef) -> Check:
        """The check a command changes: the one the caller has just read (and may change), or read now.
        A check read before a concurrent command is refused at saving (``concurrent_update``)."""
        return self.caching.owned(check) if isinstance(check, Check) else self.check(check)

    def check_events(self, check_id: UUID) -> list[Check.Event]:
        events = [event for event in self.events.get(check_id) if isinstance(event, Check.Event)]
        if not events or not isinstance(events[0], Check.Raised):
            raise NotFound.of("check")
        return events

    def raise_check(
        self,
        approver: str,
        *,
        category: str,
        matter: dict[str, Any],
        applicant: dict[str, Any],
        claims: dict[str, Any],
        purpose: str,
        consent: dict[str, Any],
        issuer: str | None = None,
        idempotency_key: str | None = None,
        officer: str | None = None,
    ) -> tuple[Check, int | None]:
        """Raises a check. Returns the position it recorded, or None when an earlier request with the
        same idempotency key had raised it already (that check is returned)."""
        acting = self.acting(approver, officer)
        if not isinstance(category, str) or not category:
            raise UnknownCategory(f"no category {category!r}")
        found = self._read(Category.stream_id(category), Directory.STREAM_ID)  # one query for both
        try:
            chosen = self._found(found, Category.stream_id(category), Category, "category")
        except NotFound:
            raise UnknownCategory(f"no category {category!r}") from None
        if not chosen.online:
            raise CategoryUnavailable(f"category {category!r} is retired or not checkable online")
        applicant = {**applicant, "id_number": validate_id_number(applicant.get("id_number"))}
        if chosen.claims_schema is not None:
            self.claims.validate(chosen.claims_schema, claims)
        directory = found.get(Directory.STREAM_ID) or Directory.open()
        if issuer is None:
            issuer = directory.route(chosen.issuer_kind, applicant["id_number"][:6])
        else:
            directory.require_issuer(issuer, chosen.issuer_kind)
        check_id = Check.stream_id(approver, idempotency_key)
        check = Check.raise_check(
            check_id,
            category=category,
            matter=matter,
            approver=approver,
            issuer=issuer,
            applicant=applicant,
            claims=claims,
            purpose=purpose,
            consent=consent,
            sla_seconds=chosen.sla_seconds,
            **acting,
        )
        try:
            return check, self._save(check)
        except ConcurrentUpdate:
            if idempotency_key is None:
                raise
            existing = self.check(check_id)
            if existing.approver != approver:
                raise
            return existing, None

    def accept(self, check: CheckRef, actor: str, officer: str | None = None) -> tuple[Check, int]:
        check = self._current(check)
        check.accept(actor, **self.acting_on(check, "Accepted", actor, officer))
        return check, self._save(check)

    def request_info(self, check: CheckRef, actor: str, question: str, officer: str | None = None) -> tuple[Check, int]:
        check = self._current(check)
        check.request_info(actor, question, **self.acting_on(check, "InfoRequested", actor, officer))
        return check, self._save(check)

    def supply_info(self, check: CheckRef, actor: str, answer: str, officer: str | None = None) -> tuple[Check, int]:
        check = self._current(check)
        check.supply_info(actor, answer, **self.acting_on(check, "InfoSupplied", actor, officer))
        return check, self._save(check)

    def forward(
        self, check: CheckRef, actor: str, to: str, reason: str, officer: str | None = None
    ) -> tuple[Check, int]:
        check = self._current(check)
        category = self.category(check.category)
        acting = self.acting_on(check, "Forwarded", actor, officer)
        self.directory().require_issuer(to, category.issuer_kind)
        check.forward(actor, to, reason, category.sla_seconds, **acting)
        return check, self._save(check)

    def reply(
        self,
        check: CheckRef,
        actor: str,
        conclusion: str,
        statements: dict[str, Any],
        valid_days: int,
        officer: str | None = None,
    ) -> tuple[Check, int]:
        if conclusion not in CONCLUSIONS:
            raise InvalidInput(f"conclusion must be one of {list(CONCLUSIONS)}")
        if isinstance(valid_days, bool) or not isinstance(valid_days, int) or not 1 <= valid_days <= 3650:
            raise InvalidInput("valid_days must be an integer from 1 to 3650")
        check = self._current(check)
        check.require_reply(actor)
        found = self._read(Department.stream_id(actor), Department.stream_id(check.approver))  # one query
        issuer = self._found(found, Department.stream_id(actor), Department, "department")
        approver = self._found(found, Department.stream_id(check.approver), Department, "department")
        issuer.require_officer(officer)
        now = self.clock()
        seal = issuer.current_seal(now)
        issued_at = now
        valid_until = issued_at + timedelta(days=valid_days)
        proof_id = proof_id_of(check.id)
        payload = build_proof_payload(
            proof_id=str(proof_id),
            check_id=str(check.id),
            category=check.category,
            matter=check.matter,
            issuer={"id": issuer.department_id, "name": issuer.name, "uscc": issuer.uscc},
            requester={"id": approver.department_id, "name": approver.name},
            subject={"name": check.applicant.get("name"), "id_number": check.applicant["id_number"]},
            claims=check.claims or {},
            conclusion=conclusion,
            statements=statements,
            issued_at=issued_at,
            valid_until=valid_until,
        )
        jws = self.sealer.seal(seal.kid, payload)
        check.reply(
            actor,
            proof_id=proof_id,
            jws=jws,
            kid=seal.kid,
            conclusion=conclusion,
            statements=statements,
            issued_at=issued_at,
            valid_until=valid_until,
            officer=officer,
        )
        return check, self._save(check)

    def decline(
        self, check: CheckRef, actor: str, reason_code: str, note: str, officer: str | None = None
    ) -> tuple[Check, int]:
        if reason_code not in DECLINE_REASONS:
            raise InvalidInput(f"reason_code must be one of {list(DECLINE_REASONS)}")
        check = self._current(check)
        check.decline(actor, reason_code, note, **self.acting_on(check, "Declined", actor, officer))
        return check, self._save(check)

    def withdraw(self, check: CheckRef, actor: str, reason: str, officer: str | None = None) -> tuple[Check, int]:
        check = self._current(check)
        check.withdraw(actor, reason, **self.acting_on(check, "Withdrawn", actor, officer))
        return check, self._save(check)

    def close_check(self, check: CheckRef, actor: str, outcome: str, officer: str | None = None) -> tuple[Check, int]:
        if outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {list(OUTCOMES)}")
        check = self._current(check)
        sealer = [Department.stream_id(check.proof.sealer)] if check.proof is not None else []
        found = self._read(Category.stream_id(check.category), *sealer)  # one query for both
        category = self._found(found, Category.stream_id(check.category), Category, "category")
        check.close(
            actor,
            outcome,
            proof_valid=self.proof_valid(check, self.clock(), found.get(sealer[0]) if sealer else None),
            commitment_allowed="commitment" in category.modes,
            **self.acting_on(check, "Closed", actor, officer),
        )
        return check, self._save(check)

    def revoke_proof(self, proof_id: UUID, actor: str, reason: str, officer: str | None = None) -> tuple[Check, int]:
        check = self.check_of_proof(proof_id)
        acting = self.acting_on(check, "ProofRevoked", actor, officer) if check.proof else {}
        check.revoke_proof(actor, reason, **acting)
        return check, self._save(check)
