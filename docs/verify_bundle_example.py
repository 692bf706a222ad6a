#!/usr/bin/env python3
"""Verify a nocert evidence bundle (format nocert.evidence-bundle.v1) without nocert.

    python3 verify_bundle_example.py BUNDLE.json ROOT.pem

Needs Python 3.11+ and the `cryptography` package only. ROOT.pem is the platform's root certificate,
obtained independently of the bundle (GET /v1/trust/root, its SHA-256 fingerprint confirmed out of band).
Prints "valid" or "invalid" on the first line, then what was found; exits 0 when valid, 1 otherwise.
docs/evidence-bundle.md explains every step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


# -- RFC 8785 (JSON Canonicalization Scheme) ----------------------------------------------------------

def canonical(value) -> bytes:
    return _jcs(value).encode("utf-8")


def _jcs(value) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _es_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # escapes exactly what ECMAScript's JSON.stringify does
    if isinstance(value, list):
        return "[" + ",".join(_jcs(item) for item in value) + "]"
    keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # by UTF-16 code units
    return "{" + ",".join(_jcs(key) + ":" + _jcs(value[key]) for key in keys) + "}"


def _es_number(x: float) -> str:
    """ECMAScript's Number.prototype.toString, which RFC 8785 prescribes for numbers."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("not a JSON number")
    if x == 0:
        return "0"
    sign, (mantissa, _, exponent) = ("-" if x < 0 else ""), repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    raw = whole + fraction
    digits = raw.lstrip("0").rstrip("0")
    n = len(whole) + int(exponent or 0) - (len(raw) - len(raw.lstrip("0")))  # value = 0.digits * 10**n
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))


# -- RFC 9162 Merkle trees ----------------------------------------------------------------------------

def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# -- RFC 7515 compact JWS, EdDSA (RFC 8037) -----------------------------------------------------------

def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def open_jws(text: str, typ: str, root: x509.Certificate) -> tuple[dict, x509.Certificate]:
    """The payload and signing certificate of a JWS whose signature, kid and chain to `root` hold."""
    head, body, signature = text.split(".")
    header, payload = json.loads(b64url(head)), json.loads(b64url(body))
    if header.get("alg") != "EdDSA" or header.get("typ") != typ or "crit" in header:
        raise ValueError(f"the header is not that of a {typ}")
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    cert.verify_directly_issued_by(root)  # raises unless the root signed it
    if header.get("kid") != hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest():
        raise ValueError("kid is not the SHA-256 of the certificate")
    cert.public_key().verify(b64url(signature), f"{head}.{body}".encode("ascii"))  # raises if forged
    return payload, cert


def san_uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def time_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def within_validity(cert: x509.Certificate, moment: datetime) -> bool:
    return cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc


def same_certificate(pem: str, cert: x509.Certificate) -> bool:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER) == cert.public_bytes(Encoding.DER)


# -- the bundle ---------------------------------------------------------------------------------------

# Section 4 of the contract: the statuses each event type may follow, and the status it leads to.
TRANSITIONS = {
    "Accepted": ({"raised"}, "accepted"),
    "InfoRequested": ({"accepted"}, "info_requested"),
    "InfoSupplied": ({"info_requested"}, "accepted"),
    "Forwarded": ({"raised", "accepted"}, "raised"),
    "Replied": ({"raised", "accepted"}, "replied"),
    "Declined": ({"raised", "accepted", "info_requested"}, "declined"),
    "Withdrawn": ({"raised", "accepted", "info_requested"}, "withdrawn"),
    "Closed": ({"raised", "accepted", "info_requested", "replied", "declined"}, "closed"),
    "ProofRevoked": ({"replied", "closed"}, None),
}


def verify(bundle: dict, root: x509.Certificate) -> tuple[list[str], list[str]]:
    """(problems, findings): the bundle is valid when there is no problem."""
    problems, findings = [], []
    check_id = bundle["check_id"]
    if bundle.get("format") != "nocert.evidence-bundle.v1":
        return ["not a nocert.evidence-bundle.v1"], findings

    # 1. content_sha256: the canonical JSON of every other member (detects damage, not forgery).
    rest = {name: value for name, value in bundle.items() if name != "content_sha256"}
    if hashlib.sha256(canonical(rest)).hexdigest() != bundle.get("content_sha256"):
        problems.append("content_sha256 does not match the content")

    # 2. The checkpoint: signed by the ledger key, whose certificate the root issued.
    checkpoint = bundle["checkpoint"]
    signed, ledger = open_jws(checkpoint["jws"], "nocert-checkpoint+jws", root)
    if "urn:nocert:ledger" not in san_uris(ledger) or not within_validity(ledger, time_of(signed["issued_at"])):
        problems.append("the checkpoint is not signed by the ledger's certificate in its validity")
    if signed != {name: checkpoint[name] for name in ("tree_size", "root_hash", "issued_at")}:
        problems.append("the checkpoint's fields differ from what its JWS signs")
    if not same_certificate(bundle["ledger_certificate_pem"], ledger):
        problems.append("ledger_certificate_pem is not the certificate that signed the checkpoint")
    size, root_hash = signed["tree_size"], bytes.fromhex(signed["root_hash"])
    findings.append(f"checkpoint: {size} leaves, root {signed['root_hash']}, signed {signed['issued_at']}")

    # 2b. The checkpoint as a C2SP note (when present): signed by the same ledger key, same size and root.
    if "checkpoint_note" in bundle:
        problems += check_note(bundle["checkpoint_note"], ledger, size, root_hash, findings)

    # 3. Each event: its stored bytes (withheld in a masked bundle), its leaf, its place in the signed tree.
    masked = bundle.get("disclosure", "full") == "masked"
    status, previous = None, None
    for number, event in enumerate(bundle["events"], 1):
        state = b"" if masked else base64.b64decode(event["state_b64"], validate=True)
        if not masked and hashlib.sha256(state).hexdigest() != event["state_sha256"]:
            problems.append(f"event {number}: state_sha256 is not the SHA-256 of its state")
        leaf = canonical({name: event[name] for name in ("position", "stream_id", "version", "type", "state_sha256")})
        if leaf_hash(leaf).hex() != event["leaf_hash"]:
            problems.append(f"event {number}: its fields do not hash to its leaf_hash")
        path = [bytes.fromhex(node) for node in event["inclusion_path"]]
        if not verify_inclusion(event["index"], size, leaf_hash(leaf), path, root_hash):
            problems.append(f"event {number}: not leaf {event['index']} of the signed tree")
        if event["stream_id"] != check_id or event["version"] != number:
            problems.append(f"event {number}: not version {number} of check {check_id}")
        if previous is not None and not (event["position"] > previous["position"] and event["index"] > previous["index"]):
            problems.append(f"event {number}: out of log order")
        try:
            recorded = json.loads(state)["timestamp"]["_data_"]  # readable when not encrypted at rest
        except (ValueError, KeyError, TypeError):
            recorded = None
        if recorded is not None and time_of(recorded) != time_of(event["at"]):
            problems.append(f"event {number}: 'at' is not the time recorded in its state")
        name = event["type"].removeprefix("nocert:check:")
        if number == 1:
            if name != "Raised":
                problems.append("a check starts with Raised")
            status = "raised"
        elif name not in TRANSITIONS or status not in TRANSITIONS[name][0]:
            problems.append(f"event {number}: {name} is not allowed from status {status}")
        else:
            status = TRANSITIONS[name][1] or status
        previous = event
    findings.append(f"check {check_id}: {len(bundle['events'])} events, status {status}")

    # 4. The proof, if the check was answered: sealed by the issuer's certificate, valid when issued.
    replied = any(event["type"] == "nocert:check:Replied" for event in bundle["events"])
    proof = bundle.get("proof")
    if proof is None:
        if replied:
            problems.append("the check was replied to but the bundle holds no proof")
        return problems, findings
    if masked:  # the proof names the subject: withheld, shown only by its Replied event's leaf
        findings.append(f"proof {proof['id']}: withheld from this masked bundle")
        return problems, findings
    payload, seal = open_jws(proof["jws"], "nocert-proof+jws", root)
    if f"urn:nocert:department:{payload['issuer']['id']}" not in san_uris(seal):
        problems.append("the proof is not sealed by its issuer's certificate")
    if not within_validity(seal, time_of(payload["issued_at"])):
        problems.append("the proof was issued outside its certificate's validity")
    if not replied or payload["check_id"] != check_id or payload["id"] != proof["id"]:
        problems.append("the proof is not the proof of this check")
    chain = proof["certificate_chain_pem"]
    if not (same_certificate(chain[0], seal) and same_certificate(chain[1], root)):
        problems.append("certificate_chain_pem is not [the seal's certificate, the root]")
    expired = datetime.now(UTC) >= time_of(payload["valid_until"])
    findings.append(f"proof {proof['id']}: {payload['conclusion']} by {payload['issuer']['id']}, issued "
                    f"{payload['issued_at']}, {'expired' if expired else 'valid until'} {payload['valid_until']}")
    findings += [f"the issuer revoked the proof at {event['at']}" for event in bundle["events"]
                 if event["type"] == "nocert:check:ProofRevoked"]
    findings.append("offline, the seal key's revocations are unknown: check the root's CRL (GET /v1/trust/crl)")
    return problems, findings


def check_note(note: str, ledger: x509.Certificate, size: int, root_hash: bytes, findings: list[str]) -> list[str]:
    """C2SP signed-note: text, a blank line, lines "— <name> <base64(4-byte key id || signature)>"; the ledger's
    line is by key name = origin (the first line), key id SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    text, _, signatures = note.rpartition("\n\n")
    lines = text.split("\n")
    origin = lines[0]
    public = ledger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]
    ours = [base64.b64decode(line.rsplit(" ", 1)[1]) for line in signatures.splitlines()
            if line.startswith(f"\u2014 {origin} ")]
    signed = [raw[4:] for raw in ours if raw[:4] == key_id]
    try:
        ledger.public_key().verify(signed[0], (text + "\n").encode())
    except Exception:
        return ["checkpoint_note is not signed by the ledger key"]
    if (int(lines[1]), base64.b64decode(lines[2])) != (size, root_hash):
        return ["checkpoint_note gives another tree size or root than the checkpoint"]
    others = [line.split(" ")[1] for line in signatures.splitlines() if not line.startswith(f"\u2014 {origin} ")]
    findings.append(f"checkpoint note of {origin}" + (f", cosigned by {', '.join(others)} (not verified here)" if others else ""))
    return []


def unique_members(pairs: list) -> dict:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("a JSON object repeats a member name")
    return dict(pairs)


def main(bundle_path: str, root_path: str) -> int:
    with open(root_path, "rb") as file:
        root = x509.load_pem_x509_certificate(file.read())
    try:
        with open(bundle_path, encoding="utf-8") as file:
            bundle = json.load(file, object_pairs_hook=unique_members)
        problems, findings = verify(bundle, root)
    except Exception as error:  # any malformed or forged part: a signature that fails raises here
        problems, findings = [f"{type(error).__name__}: {error}"], []
    print("invalid" if problems else "valid")
    for line in problems + findings:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
