"""The audit's pass over streams: each event decoded with the application's mapper and its stream checked:
versions 1, 2, 3..., one aggregate per stream, and for checks every event allowed from the status reached
so far, by the party the status machine names (API.md §4)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from audit.proof_workers import ProofItem, ProofVerifier
from audit.report import Findings
from domain.check_rules import PLATFORM, TRANSITIONS, exemption_refusal, forward_refusal, revocation_refusal
from domain.department import Department
from domain.proof import Proof
from domain.timefmt import format_time
from signing.proofs import DepartmentTrust, Trust

CHECK_PREFIX = "nocert:check:"


class Stream:
    """What the audit remembers of one stream while it scans the log."""

    __slots__ = (
        "version", "aggregate", "status", "known", "approver", "issuer", "sealer", "conclusion", "replied", "revoked",
        "valid_until", "platform", "erased",
    )

    def __init__(self, aggregate: str) -> None:
        self.version = 0
        self.aggregate = aggregate
        self.status: str | None = None
        self.known = True  # False once an event could not be decoded: facts after it cannot be judged
        self.approver: str | None = None
        self.issuer: str | None = None
        self.sealer: str | None = None
        self.erased = False  # after SubjectErased (API.md §14)
        self.conclusion: str | None = None
        self.replied = False
        self.revoked = False
        self.valid_until: datetime | None = None
        self.platform = PLATFORM  # the actor of the platform's own events (TRANSITIONS' party ``platform``)


@functools.lru_cache(maxsize=1024)
def aggregate_of(topic: str) -> str:
    """``nocert:check:Raised`` → ``nocert:check``: the aggregate a topic belongs to (remembered: a log has
    a few dozen topics)."""
    return topic.rpartition(":")[0] if topic.count(":") >= 2 else topic


_FIELDS: dict[type, frozenset[str]] = {}


def fields_of(cls: type) -> frozenset[str]:
    """The attributes an event of this class carries: every annotation along its MRO."""
    if cls not in _FIELDS:
        names: set[str] = set()
        for klass in reversed(cls.__mro__):
            for name, annotation in klass.__dict__.get("__annotations__", {}).items():
                if "ClassVar" not in str(annotation):
                    names.add(name)
        _FIELDS[cls] = frozenset(names)
    return _FIELDS[cls]



class StreamAudit:
    """Decodes every event and follows every stream, reporting to `findings`; hands each ``Replied`` proof
    to `proofs`, whose trust learns each department as the log registers it."""

    def __init__(self, app: Any, findings: Findings, proofs: ProofVerifier, trust: Trust | None) -> None:
        self.app = app
        self.findings = findings
        self.problem = findings.add
        self.proofs = proofs
        self.trust = trust
        self.streams: dict[str, Stream] = {}

    def decode(self, notification: Notification) -> Any:
        try:
            event = self.app.mapper.to_domain_event(notification)
        except Exception as error:  # any failure to decode stored bytes is the finding itself
            self.problem(notification.id, "undecodable_event", f"{notification.topic}: {type(error).__name__}: {_first_line(error)}")
            return None
        expected = _FIELDS.get(type(event)) or fields_of(type(event))
        if vars(event).keys() != expected:
            present = set(vars(event))
            missing, extra = sorted(expected - present), sorted(present - expected)
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])
            self.problem(notification.id, "undecodable_event", f"{notification.topic}: its state does not fit the type: {'; '.join(parts)}")
            return None
        if isinstance(event, Department.Registered):
            self._know_department(event.department_id)
        return event

    def follow(self, notification: Notification, stream_id: str, event: Any) -> None:
        position, topic, version = notification.id, notification.topic, notification.originator_version
        aggregate = aggregate_of(topic)
        stream = self.streams.get(stream_id)
        first = stream is None
        if stream is None:
            stream = self.streams[stream_id] = Stream(aggregate)
            if version != 1:
                self.problem(position, "version_gap", f"stream {stream_id} starts at version {version}, not 1")
        elif version != stream.version + 1:
            if version <= stream.version:
                detail = f"stream {stream_id} has version {version} again after version {stream.version}"
            else:
                missing = f"{stream.version + 1}" if version == stream.version + 2 else f"{stream.version + 1}..{version - 1}"
                detail = f"stream {stream_id} jumps from version {stream.version} to {version}: version {missing} is missing"
            self.problem(position, "version_gap", detail)
        stream.version = max(stream.version, version)
        if aggregate != stream.aggregate:
            self.problem(position, "invalid_transition", f"stream {stream_id} of {stream.aggregate} has an event {topic}")
            return
        if event is not None and isinstance(event, Aggregate.Created) != first:
            where = "starts with" if first else "has a second creation event"
            self.problem(position, "invalid_transition", f"stream {stream_id} {where} {topic}")
        if aggregate == "nocert:check":
            self._check_step(stream, stream_id, notification, event, first)

    def _check_step(self, stream: Stream, stream_id: str, notification: Notification, event: Any, first: bool) -> None:
        position = notification.id
        name = notification.topic.removeprefix(CHECK_PREFIX)
        label = f"check {stream_id} version {notification.originator_version}"
        if name == "Raised":
            if not first:
                self.problem(position, "invalid_transition", f"{label}: Raised again")
            stream.status = "raised"
            if event is None:
                stream.known = False
            else:
                stream.approver, stream.issuer = event.approver, event.issuer
                if event.actor != event.approver:
                    self.problem(position, "invalid_transition", f"{label}: Raised by {event.actor}, not its approver {event.approver}")
            return
        if name == "SubjectErased":
            if first or stream.erased:
                self.problem(position, "invalid_transition", f"{label}: SubjectErased {'starts a check' if first else 'again'}")
            stream.erased = True
            return
        if name not in TRANSITIONS:
            self.problem(position, "invalid_transition", f"{label}: {notification.topic} is no event of a check")
            return
        party, allowed, leads_to = TRANSITIONS[name]
        if first:
            self.problem(position, "invalid_transition", f"{label}: a check starts with Raised, not {name}")
        elif stream.status not in allowed:
            self.problem(position, "invalid_transition", f"{label}: {name} is not allowed from status {stream.status}")
        if event is None:
            stream.known = False
        elif stream.known:
            self._check_event_facts(stream, label, position, name, party, event)
        elif name == "Replied":
            self._add_proof(event, position)
        if name == "Replied":
            stream.replied = True
        if leads_to is not None:
            stream.status = leads_to

    def _check_event_facts(self, stream: Stream, label: str, position: int, name: str, party: str, event: Any) -> None:
        """The §4 rules that need the decoded event, the domain's own (`domain.check`): who recorded it, whom
        a check is forwarded to, and what a proof allows."""
        expected = getattr(stream, party)  # the check's issuer, approver or sealer (TRANSITIONS' parties)
        if expected is not None and event.actor != expected:
            self.problem(position, "invalid_transition", f"{label}: {name} recorded by {event.actor}, not the check's {party} {expected}")
        if name == "Forwarded":
            if forward_refusal(stream.issuer, event.to) is not None:
                self.problem(position, "invalid_transition", f"{label}: forwarded to its current issuer {event.to}")
            stream.issuer = event.to
        elif name == "Replied":
            stream.sealer, stream.conclusion, stream.valid_until = event.actor, event.conclusion, event.valid_until
            self._add_proof(event, position)
        elif name == "ProofRevoked":
            refusal = revocation_refusal(stream.replied, stream.revoked)
            if refusal is not None:
                self.problem(position, "invalid_transition", f"{label}: ProofRevoked: {refusal.detail}")
            stream.revoked = True
        elif name == "Closed" and event.outcome == "exempted":
            # Key revocations are not the record's to judge (they come later, or from outside the log).
            lapsed = Proof.lapses(
                now=event.timestamp,
                issued_at=None,
                valid_until=stream.valid_until,
                revoked=stream.revoked,
                key_revoked_at=None,
            )
            if exemption_refusal(stream.status, stream.conclusion, proof_valid=True) is not None:
                self.problem(position, "invalid_transition", f"{label}: closed exempted without a confirmed reply")
            elif "proof_revoked" in lapsed:
                self.problem(position, "invalid_transition", f"{label}: closed exempted after its proof was revoked")
            elif "proof_expired" in lapsed:
                until = format_time(stream.valid_until) if stream.valid_until else "unknown"
                self.problem(position, "invalid_transition", f"{label}: closed exempted after its proof expired ({until})")

    def _add_proof(self, event: Any, position: int) -> None:
        self.proofs.add(
            ProofItem(
                position,
                event.jws,
                str(event.originator_id),
                str(event.proof_id),
                event.kid,
                event.actor,
                event.conclusion,
                event.issued_at,
            )
        )

    def _know_department(self, department_id: str) -> None:
        """Adds a department the log registers to the proofs' trust, as the platform's trust knows it (a
        proof can only name a department registered before it)."""
        record = DepartmentTrust(department_id, {}) if self.trust is None else self.trust.department(department_id)
        if record is not None:
            self.proofs.departments[department_id] = record


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""

