"""Test doubles for the domain's ports (domain/ports.py): a sealer without real keys and a claims
validator that behaves like the real one (JSON Schema through ``jsonschema``)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from domain.errors import InvalidClaims, InvalidInput
from domain.ports import SealCertificate


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_fake_jws(jws: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a JWS made by FakeSealer."""
    header, payload, _ = jws.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
    )


class FakeSealer:
    """Creates seal 'certificates' with unique 64-hex kids and seals payloads into an unsigned-looking
    compact JWS whose signature is a hash (enough for the domain, which never verifies)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.created: list[tuple[str, str, str, str]] = []  # (kid, department id, name, uscc)
        self.sealed: list[tuple[str, dict[str, Any]]] = []
        self.retired: list[str] = []

    def create_seal(self, department_id: str, name: str, uscc: str) -> SealCertificate:
        kid = hashlib.sha256(f"{department_id}:{next(self._counter)}".encode()).hexdigest()
        self.created.append((kid, department_id, name, uscc))
        now = datetime.now(UTC)
        return SealCertificate(
            kid=kid,
            certificate_pem=f"-----BEGIN CERTIFICATE-----\n{kid}\n-----END CERTIFICATE-----\n",
            not_before=now - timedelta(minutes=5),
            not_after=now + timedelta(days=3650),
        )

    def retire(self, kid: str) -> None:
        self.retired.append(kid)

    def seal(self, kid: str, payload: dict[str, Any]) -> str:
        assert kid not in self.retired, f"sealed with the retired key {kid}"
        self.sealed.append((kid, payload))
        header = _b64url(json.dumps({"alg": "EdDSA", "typ": "nocert-proof+jws", "kid": kid}).encode())
        body = _b64url(json.dumps(payload, ensure_ascii=False).encode())
        signature = _b64url(hashlib.sha512(f"{kid}.{header}.{body}".encode()).digest())
        return f"{header}.{body}.{signature}"


class FakeClaims:
    """JSON Schema checks like the real validator: a bad schema is ``validation_error``, claims that
    do not validate are ``invalid_claims``."""

    def check_schema(self, schema: dict[str, Any]) -> None:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except SchemaError as error:
            raise InvalidInput(f"claims_schema is no valid JSON Schema: {error.message}") from None

    def validate(self, schema: dict[str, Any], claims: dict[str, Any]) -> None:
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(claims))
        if error is not None:
            raise InvalidClaims(f"claims do not validate: {error.message}")
