"""Sealed proofs: their sealing and the validity rules of API.md section 5 (the payload is the domain's,
`domain.proof.build_proof_payload`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509

from domain.proof import Proof
from domain.timefmt import parse_time
from signing import jws
from signing.certificates import department_id_of, is_issued_by, is_valid_at, kid_of
from signing.key import SigningKey

PROOF_TYP = "nocert-proof+jws"

REASONS = (
    "malformed",
    "bad_signature",
    "unknown_issuer",
    "untrusted_certificate",
    "certificate_expired",
    "key_revoked",
    "proof_revoked",
    "proof_expired",
    "kid_mismatch",
    "issuer_mismatch",
)
"""Every reason code of the contract, in the order a verdict lists them."""


@dataclass(frozen=True)
class CertificateTrust:
    """What the platform knows of one seal certificate: when, if ever, its key was revoked."""

    kid: str
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class DepartmentTrust:
    """A known department and every certificate it has held, by kid."""

    id: str
    certificates: Mapping[str, CertificateTrust]


class Trust(Protocol):
    """The platform's record of departments, their keys' revocations and revoked proofs."""

    def department(self, department_id: str) -> DepartmentTrust | None:
        """The department with this id, or None if the platform knows none."""
        ...

    def proof_revoked(self, payload: dict[str, Any]) -> bool:
        """Whether the proof with this payload was revoked; False for a payload it cannot place."""
        ...


@dataclass(frozen=True)
class ProofVerdict:
    valid: bool
    reasons: list[str]
    payload: dict[str, Any] | None
    kid: str | None
    issuer: str | None


def seal_proof(signer: SigningKey, payload: dict[str, Any]) -> str:
    """The proof as a compact JWS sealed by `signer`, which must be the seal of the payload's issuer."""
    if department_id_of(signer.certificate) != _issuer_id(payload):
        raise ValueError("the seal's certificate names another department than the payload's issuer")
    return jws.seal(signer, PROOF_TYP, payload)


def verify_proof(
    text: str, root_cert: x509.Certificate, trust: Trust | None, now: datetime
) -> ProofVerdict:
    """Judge a proof by every rule of API.md section 5 at the aware datetime `now`.

    With `trust` None the verification is offline: it checks the signature, the certificate chain, the
    kid, the issuer binding and all times, but cannot know departments or revocations, so it never reports
    `unknown_issuer`, `key_revoked` or `proof_revoked`.
    """
    try:
        parsed = jws.decode_compact(text)
    except jws.MalformedJWS:
        return ProofVerdict(False, ["malformed"], None, None, None)
    payload = parsed.payload
    kid = parsed.header.get("kid") if isinstance(parsed.header.get("kid"), str) else None
    issuer_id = _issuer_id(payload)
    try:
        jws.check_header(parsed.header)
    except jws.MalformedJWS:  # `malformed` stands alone; the payload and issuer are told since it parses
        return ProofVerdict(False, ["malformed"], payload, kid, issuer_id)
    issued_at = _payload_time(payload, "issued_at")
    valid_until = _payload_time(payload, "valid_until")
    department = functools.cache(trust.department) if trust is not None else None

    failed: set[str] = set()
    key_revoked_at = None
    authentic = False  # signed by a key the platform root certified
    cert = jws.certificate_of(parsed.header)
    if cert is None:
        failed.add("untrusted_certificate")
    else:
        cert_kid, cert_department, public_key = _facts_of(cert)
        signed = jws.verify_signature(parsed, public_key)
        if not signed:
            failed.add("bad_signature")
        certified = is_issued_by(cert, root_cert)
        if not certified:
            failed.add("untrusted_certificate")
        authentic = signed and certified
        if kid != cert_kid:
            failed.add("kid_mismatch")
        if issuer_id is None or cert_department != issuer_id:
            failed.add("issuer_mismatch")
        if issued_at is None or not is_valid_at(cert, issued_at):
            failed.add("certificate_expired")
        if department is not None and cert_department is not None:
            key_revoked_at = _key_revoked_at(department(cert_department), cert_kid)
    if department is not None and (issuer_id is None or department(issuer_id) is None):
        failed.add("unknown_issuer")
    failed |= Proof.lapses(
        now=now,
        issued_at=issued_at,
        valid_until=valid_until,
        # Whether a proof was revoked is told only of a JWS whose signature verifies (API.md §5): anyone
        # else could ask about any proof id and learn that it exists.
        revoked=trust is not None and authentic and trust.proof_revoked(payload),
        key_revoked_at=key_revoked_at,
    )

    reasons = [reason for reason in REASONS if reason in failed]
    return ProofVerdict(not reasons, reasons, payload, kid, issuer_id)


@functools.lru_cache(maxsize=256)
def _facts_of(cert: x509.Certificate) -> tuple[str, str | None, Any]:
    """What a proof's rules read from its certificate: kid, department, public key. Remembered
    (a certificate hashes and compares by its DER bytes and never changes): an audit verifies thousands of
    proofs by the same few seals, and these were a third of each proof's verification."""
    return kid_of(cert), department_id_of(cert), cert.public_key()


def _key_revoked_at(department: DepartmentTrust | None, kid: str) -> datetime | None:
    """When the department's key `kid` was revoked, if it was."""
    record = department.certificates.get(kid) if department is not None else None
    return record.revoked_at if record is not None else None


def _issuer_id(payload: dict[str, Any]) -> str | None:
    issuer = payload.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else None
    return issuer_id if isinstance(issuer_id, str) else None


def _payload_time(payload: dict[str, Any], field: str) -> datetime | None:
    try:
        return parse_time(payload.get(field))
    except ValueError:
        return None
