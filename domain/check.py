"""The check (协查): one verification request from an approver to an issuer, one stream per check.

Status machine (API.md §4)::

    raised --accept--> accepted --request-info--> info_requested --supply-info--> accepted
    raised|accepted --forward--> raised (addressed to the new issuer, new due time)
    raised|accepted --reply--> replied        raised|accepted|info_requested --decline--> declined
    raised|accepted|info_requested --withdraw--> withdrawn
    replied|declined|raised|accepted|info_requested --close--> closed

Escalation (督办, §13) changes no status: ``Overdue`` and ``Urged``. The rules: `domain.check_rules`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.check_rules import (
    OPEN_UNANSWERED,
    PLATFORM,
    TRANSITIONS,
    _refuse,
    exemption_refusal,
    forward_refusal,
    overdue_refusal,
    revocation_refusal,
)
from domain.department import NAMESPACE
from domain.errors import Forbidden, InvalidTransition
from domain.proof import Proof


class Check(Aggregate):
    TOPIC = "nocert:check"

    class Event(Aggregate.Event):
        """``actor``: the department (or ``platform``) that recorded the event; ``officer``: the login of
        the officer who acted for it (API.md §12), None for the platform and for calls that named none.

        Version 2 added ``officer``: events stored before it load with ``officer`` None."""

        class_version = 2
        actor: str
        officer: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["officer"] = None

    class Raised(Event, Aggregate.Created):
        TOPIC = "nocert:check:Raised"
        category: str
        matter: dict[str, Any]
        approver: str
        issuer: str
        applicant: dict[str, Any]
        claims: dict[str, Any]
        purpose: str
        consent: dict[str, Any]
        sla_seconds: float

    class Accepted(Event):
        TOPIC = "nocert:check:Accepted"

        def apply(self, check: Check) -> None:
            check.status = "accepted"

    class InfoRequested(Event):
        TOPIC = "nocert:check:InfoRequested"
        question: str

        def apply(self, check: Check) -> None:
            check.status = "info_requested"
            check.info_requests.append(
                {"question": self.question, "answer": None, "asked_at": self.timestamp, "answered_at": None}
            )

    class InfoSupplied(Event):
        TOPIC = "nocert:check:InfoSupplied"
        answer: str

        def apply(self, check: Check) -> None:
            check.status = "accepted"
            check.info_requests[-1].update(answer=self.answer, answered_at=self.timestamp)

    class Forwarded(Event):
        TOPIC = "nocert:check:Forwarded"
        to: str
        reason: str
        sla_seconds: float

        def apply(self, check: Check) -> None:
            check.status = "raised"
            check.forwarded_from.append(check.issuer)
            check.issuer = self.to
            check.due_at = self.timestamp + timedelta(seconds=self.sla_seconds)
            check.overdue_since = None  # a new due time: the clock starts again

    class Replied(Event):
        TOPIC = "nocert:check:Replied"
        proof_id: UUID
        jws: str
        kid: str
        conclusion: str
        statements: dict[str, Any]
        issued_at: datetime
        valid_until: datetime

        def apply(self, check: Check) -> None:
            check.status = "replied"
            check.replied_at = self.timestamp
            check.proof = Proof(
                self.proof_id, self.jws, self.kid, check.issuer, self.conclusion, self.issued_at, self.valid_until
            )

    class Declined(Event):
        TOPIC = "nocert:check:Declined"
        reason_code: str
        note: str

        def apply(self, check: Check) -> None:
            check.status = "declined"
            check.replied_at = self.timestamp
            check.declined = {"reason_code": self.reason_code, "note": self.note}

    class Withdrawn(Event):
        TOPIC = "nocert:check:Withdrawn"
        reason: str

        def apply(self, check: Check) -> None:
            check.status = "withdrawn"
            check.closed_at = self.timestamp

    class Closed(Event):
        TOPIC = "nocert:check:Closed"
        outcome: str

        def apply(self, check: Check) -> None:
            check.status = "closed"
            check.closed_at = self.timestamp
            check.outcome = self.outcome

    class ProofRevoked(Event):
        TOPIC = "nocert:check:ProofRevoked"
        proof_id: UUID
        reason: str

        def apply(self, check: Check) -> None:
            assert check.proof is not None
            check.proof.revoked_at = self.timestamp
            check.proof.revocation_reason = self.reason

    class Overdue(Event):
        TOPIC = "nocert:check:Overdue"
        due_at: datetime  # the due time the check passed

        def apply(self, check: Check) -> None:
            check.overdue_since = self.timestamp
            check.overdue_for = self.due_at

    class Urged(Event):
        TOPIC = "nocert:check:Urged"
        note: str

        def apply(self, check: Check) -> None:
            check.urged += 1

    class SubjectErased(Event):
        """The applicant's personal data was erased (API.md §14): their key is destroyed, so the applicant,
        claims, statements and proof JWS of every event of the check read as null. Holds no personal data."""

        TOPIC = "nocert:check:SubjectErased"
        erasure_id: str

        def apply(self, check: Check) -> None:
            check.applicant = {"name": None, "id_number": None, **{key: None for key in check.applicant or {}}}
            check.claims = None
            if check.proof is not None:
                check.proof.jws = None
            check.erased_at = self.timestamp

    # Pinned name for the library's creation event, so it is not redefined without a topic.
    Created = Raised

    def __init__(
        self,
        category: str,
        matter: dict[str, Any],
        approver: str,
        issuer: str,
        applicant: dict[str, Any],
        claims: dict[str, Any],
        purpose: str,
        consent: dict[str, Any],
        sla_seconds: float,
        actor: str,
        officer: str | None = None,
    ) -> None:
        self.status = "raised"
        self.category = category
        self.matter = matter
        self.approver = approver
        self.issuer = issuer
        self.applicant: dict[str, Any] = applicant
        self.claims: dict[str, Any] | None = claims
        self.purpose = purpose
        self.consent = consent
        self.due_at: datetime = self.created_on + timedelta(seconds=sla_seconds)
        self.replied_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.outcome: str | None = None
        self.proof: Proof | None = None
        self.declined: dict[str, str] | None = None
        self.info_requests: list[dict[str, Any]] = []
        self.forwarded_from: list[str] = []
        self.overdue_since: datetime | None = None  # the time of the current ``Overdue``
        self.overdue_for: datetime | None = None  # the due time the last ``Overdue`` was recorded for
        self.urged = 0
        self.erased_at: datetime | None = None

    @staticmethod
    def stream_id(approver: str, idempotency_key: str | None) -> UUID:
        """Deterministic for an idempotency key, so a repeat can never create a second check."""
        if idempotency_key is None:
            return uuid4()
        return uuid5(NAMESPACE, f"check:{approver}:{idempotency_key}")

    @classmethod
    def raise_check(
        cls,
        check_id: UUID,
        *,
        category: str,
        matter: dict[str, Any],
        approver: str,
        issuer: str,
        applicant: dict[str, Any],
        claims: dict[str, Any],
        purpose: str,
        consent: dict[str, Any],
        sla_seconds: float,
        officer: str | None = None,
    ) -> Check:
        return cls._create(
            cls.Raised,
            id=check_id,
            category=category,
            matter=matter,
            approver=approver,
            issuer=issuer,
            applicant=applicant,
            claims=claims,
            purpose=purpose,
            consent=consent,
            sla_seconds=sla_seconds,
            actor=approver,
            officer=officer,
        )

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        """Every event of a check names its officer; events no officer caused (the platform's) name None."""
        kwargs.setdefault("officer", None)
        super().trigger_event(event_class, **kwargs)

    # -- guards -------------------------------------------------------------------------------

    def is_party(self, department_id: str) -> bool:
        """Approver, current issuer or a former issuer: may read the check."""
        return department_id in (self.approver, self.issuer) or department_id in self.forwarded_from

    def sees_personal_data(self, department_id: str) -> bool:
        """Only the approver and the current issuer see identity numbers in full (API.md §4)."""
        return department_id in (self.approver, self.issuer)

    def _require(self, event_type: str, actor: str) -> None:
        self._require_party(event_type, actor)
        self._require_status(event_type)

    def _require_party(self, event_type: str, actor: str) -> None:
        party, _, _ = TRANSITIONS[event_type]
        expected = {"issuer": self.issuer, "approver": self.approver, "platform": PLATFORM}.get(party)
        if party == "sealer":
            expected = self.proof.sealer if self.proof else None
        if actor != expected:
            raise Forbidden(f"only the check's {party} may do this")

    def _require_status(self, event_type: str) -> None:
        _, allowed_from, _ = TRANSITIONS[event_type]
        if self.status not in allowed_from:
            raise InvalidTransition(f"not allowed from status {self.status!r}")

    # -- commands -----------------------------------------------------------------------------

    def accept(self, actor: str, officer: str | None = None) -> None:
        self._require("Accepted", actor)
        self.trigger_event(self.Accepted, actor=actor, officer=officer)

    def request_info(self, actor: str, question: str, officer: str | None = None) -> None:
        self._require("InfoRequested", actor)
        self.trigger_event(self.InfoRequested, actor=actor, question=question, officer=officer)

    def supply_info(self, actor: str, answer: str, officer: str | None = None) -> None:
        self._require("InfoSupplied", actor)
        self.trigger_event(self.InfoSupplied, actor=actor, answer=answer, officer=officer)

    def forward(self, actor: str, to: str, reason: str, sla_seconds: float, officer: str | None = None) -> None:
        # The target is checked (422) before the status (409), API.md §1.
        self._require_party("Forwarded", actor)
        _refuse(forward_refusal(self.issuer, to))
        self._require_status("Forwarded")
        self.trigger_event(
            self.Forwarded, actor=actor, to=to, reason=reason, sla_seconds=sla_seconds, officer=officer
        )

    def require_reply(self, actor: str) -> None:
        """The guard of ``reply``, checked before a proof is sealed: no proof about an erased applicant."""
        self._require("Replied", actor)
        if self.erased_at is not None:
            raise InvalidTransition("the check's applicant was erased; raise a new check")

    def erase_subject(self, actor: str, erasure_id: str) -> None:
        """Records that the applicant was erased (any status; once)."""
        if self.erased_at is not None:
            raise InvalidTransition("the check's applicant is already erased")
        self.trigger_event(self.SubjectErased, actor=actor, erasure_id=erasure_id)

    def reply(
        self,
        actor: str,
        *,
        proof_id: UUID,
        jws: str,
        kid: str,
        conclusion: str,
        statements: dict[str, Any],
        issued_at: datetime,
        valid_until: datetime,
        officer: str | None = None,
    ) -> None:
        self.require_reply(actor)
        self.trigger_event(
            self.Replied,
            actor=actor,
            officer=officer,
            proof_id=proof_id,
            jws=jws,
            kid=kid,
            conclusion=conclusion,
            statements=statements,
            issued_at=issued_at,
            valid_until=valid_until,
        )

    def decline(self, actor: str, reason_code: str, note: str, officer: str | None = None) -> None:
        self._require("Declined", actor)
        self.trigger_event(self.Declined, actor=actor, reason_code=reason_code, note=note, officer=officer)

    def withdraw(self, actor: str, reason: str, officer: str | None = None) -> None:
        self._require("Withdrawn", actor)
        self.trigger_event(self.Withdrawn, actor=actor, reason=reason, officer=officer)

    def close(
        self, actor: str, outcome: str, *, proof_valid: bool, commitment_allowed: bool, officer: str | None = None
    ) -> None:
        """Closes the check. ``proof_valid``: the proof is valid now (§5); the caller knows the key history."""
        self._require("Closed", actor)
        if outcome == "exempted":
            _refuse(exemption_refusal(self.status, self.proof.conclusion if self.proof else None, proof_valid))
        if outcome == "commitment" and not commitment_allowed:
            raise InvalidTransition("the category does not allow a written commitment")
        self.trigger_event(self.Closed, actor=actor, outcome=outcome, officer=officer)

    def revoke_proof(self, actor: str, reason: str, officer: str | None = None) -> None:
        _refuse(revocation_refusal(self.proof is not None, revoked=False))  # before its sealer is asked for
        assert self.proof is not None
        self._require("ProofRevoked", actor)
        _refuse(revocation_refusal(True, self.proof.revoked_at is not None))
        self.trigger_event(self.ProofRevoked, actor=actor, proof_id=self.proof.id, reason=reason, officer=officer)

    def urge(self, actor: str, note: str, officer: str | None = None) -> None:
        self._require("Urged", actor)
        self.trigger_event(self.Urged, actor=actor, note=note, officer=officer)

    def record_overdue(self, now: datetime) -> None:
        """Records that the check passed its due time (the platform's timer, `now` by its clock)."""
        _refuse(overdue_refusal(self.status, self.due_at, self.overdue_for, now))
        self.trigger_event(self.Overdue, actor=PLATFORM, due_at=self.due_at)

    def overdue_pending(self, now: datetime) -> bool:
        """Past its due time with no ``Overdue`` recorded for it yet."""
        return overdue_refusal(self.status, self.due_at, self.overdue_for, now) is None

    # -- views --------------------------------------------------------------------------------

    def is_overdue(self, now: datetime) -> bool:
        return self.status in OPEN_UNANSWERED and now > self.due_at
