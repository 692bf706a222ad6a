"""JWS compact serialization (RFC 7515) with EdDSA over Ed25519 (RFC 8037), and nothing else.

Parsing is strict: exactly three unpadded base64url parts in canonical form, a header and a payload that
are JSON objects without duplicate members, `alg` exactly ``EdDSA`` and no `crit` extension.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signing import certificates, strictjson
from signing.key import SigningKey

ALG = "EdDSA"

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


class MalformedJWS(ValueError):
    """The text is not a compact JWS this module accepts."""


@dataclass(frozen=True)
class Parsed:
    """A decoded compact JWS; `signing_input` is what the signature covers."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def sign_compact(header: dict[str, Any], payload: dict[str, Any], signer: SigningKey) -> str:
    """Sign `payload` under the protected `header`, to which ``"alg": "EdDSA"`` is added."""
    if header.get("alg", ALG) != ALG:
        raise ValueError(f"only {ALG} is supported")
    signing_input = f"{_b64encode(_json({'alg': ALG} | header))}.{_b64encode(_json(payload))}"
    return f"{signing_input}.{_b64encode(signer.sign(signing_input.encode('ascii')))}"


def seal(signer: SigningKey, typ: str, payload: dict[str, Any]) -> str:
    """Sign `payload` under a header naming the signer's certificate, as proofs and checkpoints are.

    The header is ``{"alg": "EdDSA", "typ": typ, "kid": <kid>, "x5c": [<DER in standard base64>]}``.
    """
    x5c = base64.b64encode(certificates.to_der(signer.certificate)).decode("ascii")
    return sign_compact({"alg": ALG, "typ": typ, "kid": signer.kid, "x5c": [x5c]}, payload, signer)


def parse_compact(text: str) -> Parsed:
    """Split and decode a compact JWS; raises MalformedJWS unless it is one this module accepts."""
    parsed = decode_compact(text)
    check_header(parsed.header)
    return parsed


def decode_compact(text: str) -> Parsed:
    """Split and decode a compact JWS whatever its header says (MalformedJWS unless it has three parts in
    canonical base64url and a JSON-object header and payload): what a verifier reports of a JWS that
    `check_header` refuses."""
    if not isinstance(text, str):
        raise MalformedJWS("a compact JWS is text")
    parts = text.split(".")
    if len(parts) != 3:
        raise MalformedJWS("a compact JWS has exactly three parts")
    header = _copy(_header_object(parts[0]))
    payload = _json_object(_b64decode(parts[1]), "payload")
    signature = _b64decode(parts[2])
    return Parsed(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def check_header(header: dict[str, Any]) -> None:
    """MalformedJWS unless `alg` is exactly EdDSA and no critical extension is asked for."""
    if header.get("alg") != ALG:
        raise MalformedJWS(f"alg must be {ALG}")
    if "crit" in header:
        raise MalformedJWS("no critical header extension is understood")


@functools.lru_cache(maxsize=256)
def _header_object(part: str) -> dict[str, Any]:
    """The decoded header, remembered: every proof of one seal has the same header (kid, x5c), so an
    audit decodes it once, not once per proof. Callers get a copy (`_copy`), never this object."""
    return _json_object(_b64decode(part), "header")


def _copy(value: Any) -> Any:
    """A copy of decoded JSON, as deep as its objects and arrays go."""
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def verify_signature(parsed: Parsed, public_key: Ed25519PublicKey) -> bool:
    """Whether `parsed` carries a valid Ed25519 signature by `public_key`."""
    try:
        public_key.verify(parsed.signature, parsed.signing_input)
    except InvalidSignature:
        return False
    return True


def certificate_of(header: dict[str, Any]) -> x509.Certificate | None:
    """The first certificate of the header's `x5c` if it certifies an Ed25519 key, else None."""
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        return None
    return _certificate(x5c[0])


@functools.lru_cache(maxsize=256)
def _certificate(text: str) -> x509.Certificate | None:
    """`certificate_of` for one x5c entry, remembered: the same text is always the same certificate (and a
    certificate is immutable), and thousands of proofs carry the same few seals' certificates."""
    try:
        cert = certificates.load_der(base64.b64decode(text, validate=True))
        is_ed25519 = isinstance(cert.public_key(), Ed25519PublicKey)
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        return None
    return cert if is_ed25519 else None


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(part: str) -> bytes:
    """Decode unpadded base64url, refusing any other alphabet and non-canonical trailing bits."""
    if not _BASE64URL.fullmatch(part) or len(part) % 4 == 1:
        raise MalformedJWS("not unpadded base64url")
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    # Canonical: the bits of the last character beyond the data are zero (4 of them after 2 characters of
    # a quantum, 2 after 3), i.e. re-encoding `data` gives `part` again.
    unused = _UNUSED_BITS[len(part) % 4]
    if unused and _BASE64URL_VALUE[part[-1]] & unused:
        raise MalformedJWS("not canonical base64url")
    return data


_BASE64URL_VALUE = {char: value for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_UNUSED_BITS = {0: 0, 2: 0b1111, 3: 0b11}


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = strictjson.loads(data)
    except strictjson.InvalidJSON as error:
        raise MalformedJWS(f"the {what} is not JSON this verifier accepts: {error}") from None
    if not isinstance(value, dict):
        raise MalformedJWS(f"the {what} is not a JSON object")
    return value
