"""The audit's proof verification: every ``Replied`` proof judged as of its issue (API.md §5), in worker
processes once there are many, while the scan goes on."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cryptography import x509

from audit.report import Problem
from domain.timefmt import parse_time
from signing import certificates
from signing.proofs import DepartmentTrust, verify_proof

INTEGRITY_REASONS = frozenset(
    {
        "malformed",
        "bad_signature",
        "untrusted_certificate",
        "kid_mismatch",
        "issuer_mismatch",
        "unknown_issuer",
        "certificate_expired",
    }
)
"""Proof verdicts that mean the proof is not what was sealed. Expiry, and revocation of the proof or its
key after the fact, are the proof's later life, not a fault of the record."""

PROOF_CHUNK = 200  # proofs per task of a worker process
PARALLEL_FROM = 1000  # fewer proofs in all are verified in this process: starting workers costs about 1 s
MAX_PENDING_CHUNKS = 64  # chunks sent and not yet verified before the scan waits for the workers


class ProofItem(NamedTuple):
    """A proof to verify and what its Replied event says it is (a tuple: cheap to send to a worker)."""

    position: int
    jws: str | None  # None once the applicant was erased (API.md §14): counted apart, not verified
    check_id: str
    proof_id: str
    kid: str
    issuer: str
    conclusion: str
    issued_at: datetime


class KnownDepartments:
    """`signing.proofs.Trust` over a snapshot of `api.trust.PlatformTrust`'s departments, to send to workers.
    Revocations are not consulted: the audit ignores `key_revoked` and `proof_revoked`."""

    def __init__(self, departments: dict[str, DepartmentTrust]) -> None:
        self.departments = departments

    def department(self, department_id: str) -> DepartmentTrust | None:
        return self.departments.get(department_id)

    def proof_revoked(self, payload: dict[str, Any]) -> bool:
        return False


def verify_proofs(root_pem: bytes, departments: dict[str, DepartmentTrust], items: Sequence[ProofItem]) -> list[Problem]:
    """Worker task: each proof judged as of its issue; only integrity failures become problems."""
    root = certificates.load_pem(root_pem)
    trust = KnownDepartments(departments)
    problems = []
    for item in items:
        if item.jws is None:  # erased: `ProofVerifier.add` counts it apart
            continue
        # As of its issue. (Only expiry depends on this time, and expiry is ignored: certificate validity
        # and key revocation are judged at the signed issued_at whatever it is.)
        issued_at = item.issued_at if isinstance(item.issued_at, datetime) else datetime.now(UTC)
        verdict = verify_proof(item.jws, root, trust, issued_at)
        reasons = [reason for reason in verdict.reasons if reason in INTEGRITY_REASONS]
        label = f"proof {item.proof_id} of check {item.check_id}"
        if reasons:
            problems.append(Problem(item.position, "proof_invalid", f"{label}: {', '.join(reasons)}"))
        if verdict.payload is not None:
            differ = _proof_differences(item, verdict.payload, verdict.kid)
            if differ:
                problems.append(
                    Problem(item.position, "proof_invalid", f"{label}: the sealed proof's {', '.join(differ)} differ from its Replied event")
                )
    return problems


def _proof_differences(item: ProofItem, payload: dict[str, Any], kid: str | None) -> list[str]:
    issuer = payload.get("issuer")
    try:
        issued_at = parse_time(payload.get("issued_at"))
    except ValueError:
        issued_at = None
    checks = {
        "check_id": payload.get("check_id") == item.check_id,
        "id": payload.get("id") == item.proof_id,
        "kid": kid == item.kid,
        "issuer": isinstance(issuer, dict) and issuer.get("id") == item.issuer,
        "conclusion": payload.get("conclusion") == item.conclusion,
        "issued_at": issued_at == item.issued_at,
    }
    return [name for name, same in checks.items() if not same]


class ProofVerifier:
    """Verifies proofs as the scan finds them: in chunks in worker processes once `PARALLEL_FROM` proofs
    have been found, else all in this process at the end. The scan only waits for the workers when
    `MAX_PENDING_CHUNKS` chunks are outstanding, so verifying overlaps the scan instead of following it."""

    def __init__(self, root_cert: x509.Certificate, workers: int | None) -> None:
        self.root_pem = certificates.to_pem(root_cert).encode("ascii")
        self.workers = workers or os.cpu_count() or 1
        self.departments: dict[str, DepartmentTrust] = {}
        self.count = 0
        self.erased = 0  # proofs whose JWS is erased with its applicant's key: counted apart, not verified
        self.problems: list[Problem] = []
        self._buffer: list[ProofItem] = []
        self._pending: deque[concurrent.futures.Future[list[Problem]]] = deque()
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def add(self, item: ProofItem) -> None:
        if item.jws is None:
            self.erased += 1
            return
        self.count += 1
        self._buffer.append(item)
        if self.workers > 1 and len(self._buffer) >= (PROOF_CHUNK if self._executor else max(PARALLEL_FROM, PROOF_CHUNK)):
            while self._buffer:
                self._submit()

    def _submit(self) -> None:
        """Sends the next chunk of the buffer to a worker."""
        if self._executor is None:
            # Workers forked from a clean server process (not from this one, whose threads may hold locks),
            # preloaded with this module instead of re-running the caller's main script.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._executor = concurrent.futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        chunk, self._buffer = self._buffer[:PROOF_CHUNK], self._buffer[PROOF_CHUNK:]
        self._pending.append(self._executor.submit(verify_proofs, self.root_pem, dict(self.departments), chunk))
        while self._pending and (self._pending[0].done() or len(self._pending) > MAX_PENDING_CHUNKS):
            self.problems.extend(self._pending.popleft().result())  # bounds what waits in memory

    def finish(self) -> list[Problem]:
        """Every problem found, once every proof is verified."""
        try:
            if self._buffer:
                if self._executor is not None:
                    while self._buffer:
                        self._submit()
                else:
                    self.problems.extend(verify_proofs(self.root_pem, self.departments, self._buffer))
                    self._buffer = []
            while self._pending:
                self.problems.extend(self._pending.popleft().result())
        finally:
            self.close()
        return self.problems

    def close(self) -> None:
        """Stops the worker processes, if any were started (pending work is dropped)."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

