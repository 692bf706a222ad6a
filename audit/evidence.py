"""Evidence bundles: one check's history, verifiable offline with nothing but the platform root certificate.

A bundle (``nocert audit export``) is one JSON document in RFC 8785 canonical form::

    {"format": "nocert.evidence-bundle.v1", "check_id": "<uuid>", "exported_at": "<time>",
     "checkpoint": {"tree_size", "root_hash", "issued_at", "jws"},          signed by the ledger key
     "ledger_certificate_pem": "...",                                       = the checkpoint JWS's x5c[0]
     "events": [{"index", "position", "stream_id", "version", "type", "at",
                 "state_b64", "state_sha256", "leaf_hash", "inclusion_path": ["hex", ...]}, ...],
     "proof": null | {"id", "jws", "certificate_chain_pem": [<department>, <root>]},
     "summary": {"covered_by_proofs": false, "note": "...", "check": {...}},
     "disclosure": "full" | "masked",
     "checkpoint_note": "<the checkpoint as a C2SP note, with the witnesses' cosignatures>",
     "content_sha256": "<hex SHA-256 of the canonical JSON of every other member>"}

A ``masked`` bundle is for a reader who may not see the check's identity numbers (anyone but the approver,
the issuer that sealed the proof and auditors: `api.access.sees_proof_jws`): every ``state_b64`` and the
proof's ``jws`` are null, and each leaf is verified from its ``state_sha256`` alone.

What is proven, and by what (API.md §7, §5):

* the checkpoint's JWS verifies against the root and its certificate is the ledger's;
* every event's leaf (RFC 8785 of position, stream id, version, type and the SHA-256 of the stored state
  bytes, encrypted or not) hashes to its ``leaf_hash``, which the inclusion path proves to be leaf ``index``
  of the signed tree: the events, their order and their stored bytes are those the ledger recorded;
* the proof JWS verifies against the root as of its issue (expiry now is reported apart: it is the proof's
  life, not a fault);
* the event types form a valid §4 status sequence.

Not proven: the summary (a convenience), the events' ``at`` (checked against the state when the state is
readable, i.e. not encrypted), and completeness (the ledger shows these events are in it, not that the
check has no other). ``content_sha256`` detects corruption and careless edits of any member, not a forger,
who could recompute it: only the signatures resist forgery.

The exporter is `audit.export`, the offline verifier `audit.bundle`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

FORMAT = "nocert.evidence-bundle.v1"
FULL, MASKED = "full", "masked"  # the bundle's disclosure
CHECK_TOPIC_PREFIX = "nocert:check:"
SUMMARY_NOTE = (
    "A readable copy of the check for convenience (identity numbers masked as for auditors). It is not "
    "covered by the ledger or by any signature: rely on the events and the proof."
)


def content_digest(bundle: dict[str, Any]) -> str:
    """The hex SHA-256 of the canonical JSON of every member but ``content_sha256``."""
    return hashlib.sha256(rfc8785.dumps({k: v for k, v in bundle.items() if k != "content_sha256"})).hexdigest()


def serialize(bundle: dict[str, Any]) -> bytes:
    """The bundle as its file holds it: RFC 8785 canonical JSON and a newline, with its digest filled in."""
    return rfc8785.dumps({**bundle, "content_sha256": content_digest(bundle)}) + b"\n"
