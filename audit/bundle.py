"""Offline verification of an evidence bundle (``nocert audit verify-bundle``) with nothing but the platform
root certificate; the format and what it proves: `audit.evidence`.

The status machine is the domain's own (`domain.check.TRANSITIONS`). This module reads no store and no
settings, so that an auditor can run it far from the platform.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import rfc8785
from cryptography import x509

from audit.bundle_note import check_checkpoint_note
from audit.evidence import CHECK_TOPIC_PREFIX, FORMAT, FULL, MASKED, content_digest
from audit.stored_state import payload_time, readable_state, state_time
from domain.check_rules import TRANSITIONS
from domain.timefmt import parse_time
from privacy.fields import is_sealed
from signing import certificates, jws, merkle, strictjson
from signing.checkpoints import InvalidCheckpoint, verify_checkpoint
from signing.leaf import leaf_bytes
from signing.note import VerifierKey
from signing.proofs import verify_proof

_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


# -- verifying ----------------------------------------------------------------------------------


@dataclass
class ProofFinding:
    id: str | None
    kid: str | None
    issuer: str | None
    valid_at_issue: bool
    integrity_reasons: list[str]
    expired: bool
    valid_until: str | None
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class BundleVerdict:
    valid: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    check_id: str | None = None
    status: str | None = None
    events: int = 0
    tree_size: int | None = None
    proof: ProofFinding | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "check_id": self.check_id,
            "status": self.status,
            "events": self.events,
            "tree_size": self.tree_size,
            "reasons": list(self.reasons),
            "proof": self.proof.to_dict() if self.proof is not None else None,
            "notes": list(self.notes),
        }


class _Invalid(Exception):
    """A structural fault after which nothing further can be checked."""


def verify_bundle(
    data: bytes, root_cert: x509.Certificate, now: datetime, witnesses: Sequence[VerifierKey] = ()
) -> BundleVerdict:
    """Judges a bundle file's bytes against the root certificate at the aware datetime `now`; each of
    `witnesses` (cosignature vkeys) must have cosigned the bundle's checkpoint note."""
    verdict = BundleVerdict()
    try:
        _Verifier(verdict, root_cert, now, witnesses).run(data)
    except _Invalid as error:
        verdict.reasons.append(str(error))
    except Exception as error:  # a hostile file must never crash the verifier, only fail verification
        verdict.reasons.append(f"the bundle is malformed: {type(error).__name__}: {error}")
    verdict.valid = not verdict.reasons
    return verdict


class _Verifier:
    def __init__(
        self, verdict: BundleVerdict, root_cert: x509.Certificate, now: datetime, witnesses: Sequence[VerifierKey]
    ) -> None:
        self.verdict = verdict
        self.witnesses = list(witnesses)
        self.masked = False
        self.root = root_cert
        self.now = now
        self.fail = verdict.reasons.append
        self.note = verdict.notes.append
        self.readable_states: list[dict[str, Any] | None] = []

    def run(self, data: bytes) -> None:
        bundle = _parse(data)
        if data not in (rfc8785.dumps(bundle), rfc8785.dumps(bundle) + b"\n"):
            # What the digest and the signatures cover is the parsed content (docs/evidence-bundle.md §2).
            self.note("the file is not in the canonical form it was exported in (pretty-printed?): its parsed content was verified")
        if bundle.get("format") != FORMAT:
            raise _Invalid(f"format is not {FORMAT}")
        disclosure = bundle.get("disclosure", FULL)
        if disclosure not in (FULL, MASKED):
            raise _Invalid(f"disclosure is neither {FULL!r} nor {MASKED!r}")
        self.masked = disclosure == MASKED
        if bundle.get("content_sha256") != content_digest(bundle):
            self.fail("content_sha256 does not match the content: the file was altered or corrupted")
        check_id = bundle.get("check_id")
        if not isinstance(check_id, str) or not _UUID.fullmatch(check_id):
            raise _Invalid("check_id is not a UUID")
        self.verdict.check_id = check_id
        try:
            parse_time(bundle.get("exported_at"))
        except ValueError:
            self.fail("exported_at is not an RFC 3339 time")
        tree_size, root_hash = self.checkpoint(bundle)
        self.checkpoint_note(bundle, tree_size, root_hash)
        events = bundle.get("events")
        if not isinstance(events, list) or not events:
            raise _Invalid("events is not a non-empty list")
        self.verdict.events = len(events)
        for number, event in enumerate(events):
            self.event(number, event, check_id, tree_size, root_hash)
        self.order(events)
        status, revoked_at = self.statuses(events)
        self.verdict.status = status
        self.proof(bundle, events, check_id, revoked_at)
        self.summary(bundle, check_id, status, len(events))
        if self.masked:
            self.note(
                "a masked bundle: the stored states and the proof are withheld (they carry identity numbers); each "
                "event's leaf is verified from its state_sha256, the proof only by its Replied event's leaf"
            )
        elif any(state is None for state in self.readable_states):
            self.note(
                "some stored states are not readable JSON (encrypted at rest): their hashes are verified, "
                "but their event times and contents cannot be compared with the summary"
            )
        self.note(
            "completeness: the inclusion proofs show these events are in the signed ledger, in this order; "
            "they cannot show that the check has no other event"
        )

    # -- the checkpoint -----------------------------------------------------------------------

    def checkpoint(self, bundle: dict[str, Any]) -> tuple[int, bytes]:
        checkpoint = bundle.get("checkpoint")
        if not isinstance(checkpoint, dict) or set(checkpoint) != {"tree_size", "root_hash", "issued_at", "jws"}:
            raise _Invalid("checkpoint must have exactly tree_size, root_hash, issued_at and jws")
        try:
            payload = verify_checkpoint(checkpoint["jws"], self.root)
        except InvalidCheckpoint as error:
            raise _Invalid(f"the checkpoint does not verify against the root certificate: {error}") from None
        if payload != {k: checkpoint[k] for k in ("tree_size", "root_hash", "issued_at")}:
            raise _Invalid("the checkpoint's fields differ from what its JWS signs")
        ledger_pem = bundle.get("ledger_certificate_pem")
        signed_by = jws.certificate_of(jws.parse_compact(checkpoint["jws"]).header)
        if not isinstance(ledger_pem, str) or signed_by is None or not _same_certificate(ledger_pem, signed_by):
            self.fail("ledger_certificate_pem is not the certificate that signed the checkpoint")
        self.verdict.tree_size = payload["tree_size"]
        return payload["tree_size"], bytes.fromhex(payload["root_hash"])

    def checkpoint_note(self, bundle: dict[str, Any], tree_size: int, root_hash: bytes) -> None:
        failures, notes = check_checkpoint_note(bundle, tree_size, root_hash, self.witnesses)
        self.verdict.reasons.extend(failures)
        self.verdict.notes.extend(notes)

    # -- events -------------------------------------------------------------------------------

    def event(self, number: int, event: Any, check_id: str, tree_size: int, root: bytes) -> None:
        label = f"event {number + 1}"
        fields = {"index", "position", "stream_id", "version", "type", "at", "state_b64", "state_sha256", "leaf_hash", "inclusion_path"}
        # ``officer`` (API.md §12: the login of the officer who acted, or null) came later: optional.
        if not isinstance(event, dict) or not fields <= set(event) <= fields | {"officer"}:
            raise _Invalid(f"{label}: must have exactly the members {sorted(fields)} (and officer)")
        if not isinstance(event.get("officer"), str | None):
            raise _Invalid(f"{label}: officer is neither text nor null")
        for name in ("index", "position", "version"):
            if not _is_count(event[name]):
                raise _Invalid(f"{label}: {name} is not a non-negative integer")
        for name in ("stream_id", "type", "at"):
            if not isinstance(event[name], str):
                raise _Invalid(f"{label}: {name} is not text")
        if event["stream_id"] != check_id:
            self.fail(f"{label}: belongs to stream {event['stream_id']}, not to check {check_id}")
        if not isinstance(event["state_sha256"], str) or not _HEX64.fullmatch(event["state_sha256"]):
            raise _Invalid(f"{label}: state_sha256 is not a SHA-256 hash in hex")
        if self.masked:
            if event["state_b64"] is not None:
                self.fail(f"{label}: a masked bundle withholds the stored state")
            state = None
        else:
            if not isinstance(event["state_b64"], str):
                raise _Invalid(f"{label}: state_b64 is not text")
            try:
                state = base64.b64decode(event["state_b64"], validate=True)
            except (binascii.Error, ValueError):
                raise _Invalid(f"{label}: state_b64 is not base64") from None
            if event["state_sha256"] != hashlib.sha256(state).hexdigest():
                self.fail(f"{label}: state_sha256 is not the SHA-256 of its state")
        leaf = merkle.leaf_hash(
            leaf_bytes(event["position"], event["stream_id"], event["version"], event["type"], event["state_sha256"])
        )
        if event["leaf_hash"] != leaf.hex():
            self.fail(f"{label} (position {event['position']}): its fields hash to leaf {leaf.hex()}, not {event['leaf_hash']}")
        path = event["inclusion_path"]
        if not isinstance(path, list) or not all(isinstance(node, str) and _HEX64.fullmatch(node) for node in path):
            raise _Invalid(f"{label}: inclusion_path is not a list of SHA-256 hashes in hex")
        if not merkle.verify_inclusion(event["index"], tree_size, leaf, [bytes.fromhex(n) for n in path], root):
            self.fail(
                f"{label} (position {event['position']}): not leaf {event['index']} of the signed tree of {tree_size} leaves"
            )
        readable = readable_state(state) if state is not None else None
        self.readable_states.append(readable)
        if readable is not None:
            recorded = state_time(readable)
            try:
                at = parse_time(event["at"])
            except ValueError:
                at = None
            if recorded is None or at != recorded:
                self.fail(f"{label} (position {event['position']}): at {event['at']} is not the time in its state")
            if "officer" in event and event["officer"] != readable.get("officer"):
                self.fail(f"{label} (position {event['position']}): officer {event['officer']!r} is not the one in its state")

    def order(self, events: list[dict[str, Any]]) -> None:
        for earlier, later in itertools.pairwise(events):
            if later["position"] <= earlier["position"] or later["index"] <= earlier["index"]:
                self.fail(f"events are not in log order at position {later['position']}")
        versions = [event["version"] for event in events]
        if versions != list(range(1, len(events) + 1)):
            self.fail(f"the check's versions are {versions}, not 1..{len(events)}")

    def statuses(self, events: list[dict[str, Any]]) -> tuple[str | None, str | None]:
        """The status the events lead to (§4), and when the proof was revoked; faults are reasons."""
        status: str | None = None
        replied = revoked_at = None
        for number, event in enumerate(events):
            topic = event["type"]
            name = topic.removeprefix(CHECK_TOPIC_PREFIX) if topic.startswith(CHECK_TOPIC_PREFIX) else None
            where = f"event {number + 1} ({topic})"
            if number == 0:
                if name != "Raised":
                    self.fail(f"{where}: a check starts with Raised")
                status = "raised"
                continue
            if name not in TRANSITIONS:
                self.fail(f"{where}: not a transition of a check")
                continue
            _, allowed, leads_to = TRANSITIONS[name]
            if status not in allowed:
                self.fail(f"{where}: not allowed from status {status}")
            if name == "Replied":
                replied = event
            if name == "ProofRevoked":
                if replied is None or revoked_at is not None:
                    self.fail(f"{where}: revokes a proof that is not there or already revoked")
                revoked_at = event["at"]
            if leads_to is not None:
                status = leads_to
        return status, revoked_at

    # -- the proof ----------------------------------------------------------------------------

    def proof(self, bundle: dict[str, Any], events: list[dict[str, Any]], check_id: str, revoked_at: str | None) -> None:
        proof = bundle.get("proof")
        replies = [n for n, event in enumerate(events) if event["type"] == CHECK_TOPIC_PREFIX + "Replied"]
        if proof is None:
            erased = any(event["type"] == CHECK_TOPIC_PREFIX + "SubjectErased" for event in events)
            if replies and not erased:
                self.fail("the check was replied to but the bundle holds no proof")
            elif replies:
                self.note("the applicant was erased (API.md §14): the proof's JWS went with their key")
            return
        if not isinstance(proof, dict) or set(proof) != {"id", "jws", "certificate_chain_pem"}:
            raise _Invalid("proof must have exactly id, jws and certificate_chain_pem")
        if not replies:
            self.fail("the bundle holds a proof but the check was never replied to")
        if self.masked:
            if proof["jws"] is not None:
                self.fail("a masked bundle withholds the proof's JWS")
            chain = proof["certificate_chain_pem"]
            if not (isinstance(chain, list) and len(chain) == 2 and isinstance(chain[1], str)) or not _same_certificate(chain[1], self.root):
                self.fail("certificate_chain_pem[1] is not the root certificate given to verify with")
            return
        text = proof["jws"]
        at_issue = verify_proof(text, self.root, None, self.now)
        issued_at = payload_time(at_issue.payload, "issued_at")
        if issued_at is not None:
            at_issue = verify_proof(text, self.root, None, issued_at)
        integrity = [reason for reason in at_issue.reasons if reason != "proof_expired"]
        payload = at_issue.payload or {}
        valid_until = payload_time(payload, "valid_until")
        finding = ProofFinding(
            id=payload.get("id") if isinstance(payload.get("id"), str) else None,
            kid=at_issue.kid,
            issuer=at_issue.issuer,
            valid_at_issue=not integrity,
            integrity_reasons=integrity,
            expired=valid_until is None or self.now >= valid_until,
            valid_until=payload.get("valid_until") if isinstance(payload.get("valid_until"), str) else None,
            revoked_at=revoked_at,
        )
        self.verdict.proof = finding
        if integrity:
            self.fail(f"the proof does not verify: {', '.join(integrity)}")
        if payload.get("check_id") != check_id or proof["id"] != payload.get("id"):
            self.fail("the proof is not the proof of this check")
        chain = proof["certificate_chain_pem"]
        header = jws.decode_compact(text).header if at_issue.payload is not None else {}
        sealed_by = jws.certificate_of(header)
        if not (isinstance(chain, list) and len(chain) == 2 and all(isinstance(pem, str) for pem in chain)):
            self.fail("certificate_chain_pem is not [department certificate, root certificate]")
        else:
            if sealed_by is None or not _same_certificate(chain[0], sealed_by):
                self.fail("certificate_chain_pem[0] is not the certificate that sealed the proof")
            if not _same_certificate(chain[1], self.root):
                self.fail("certificate_chain_pem[1] is not the root certificate given to verify with")
        for number in replies:
            state = self.readable_states[number] if number < len(self.readable_states) else None
            recorded = state.get("jws") if state is not None else None
            if is_sealed(recorded):
                self.note(f"event {number + 1} (Replied) holds its proof sealed under the applicant's key")
            elif state is not None and recorded != text:
                self.fail(f"event {number + 1} (Replied) recorded another proof than the bundle's")
        if finding.expired:
            self.note(f"the proof expired at {finding.valid_until}: it was valid when issued, it is not valid now")
        if revoked_at is not None:
            self.note(f"the proof was revoked by its issuer at {revoked_at}")
        self.note("offline verification cannot know revocations of the issuer's key: ask the platform (POST /v1/proofs/verify)")

    # -- the summary --------------------------------------------------------------------------

    def summary(self, bundle: dict[str, Any], check_id: str, status: str | None, version: int) -> None:
        summary = bundle.get("summary")
        if summary is None:
            return
        if not isinstance(summary, dict) or summary.get("covered_by_proofs") is not False or not isinstance(summary.get("check"), dict):
            self.fail("summary must be marked covered_by_proofs: false and hold the check")
            return
        check = summary["check"]
        expected = {"id": check_id, "status": status, "version": version}
        wrong = [name for name, value in expected.items() if check.get(name) != value]
        raised = self.readable_states[0] if self.readable_states else None
        if raised is not None:
            for name in ("category", "approver", "purpose", "matter"):
                if name in raised and check.get(name) != raised[name]:
                    wrong.append(name)
        if wrong:
            self.fail(f"the summary contradicts the events: {', '.join(wrong)}")


def _parse(data: bytes) -> dict[str, Any]:
    try:
        value = strictjson.loads(data, max_depth=strictjson.BUNDLE_DEPTH)
    except strictjson.InvalidJSON as error:
        raise _Invalid(f"not a JSON document this verifier accepts: {error}") from None
    if not isinstance(value, dict):
        raise _Invalid("not a JSON object")
    try:
        rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as error:
        raise _Invalid(f"not representable in RFC 8785 canonical JSON: {error}") from None
    return value


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _same_certificate(pem: str, cert: x509.Certificate) -> bool:
    try:
        return certificates.to_der(certificates.load_pem(pem)) == certificates.to_der(cert)
    except ValueError:
        return False
