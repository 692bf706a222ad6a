"""Headers and secrets: security headers on every kind of response, and nothing secret in any log.

A real ``nocert serve`` (SQLite, production settings: ``NOCERT_CIPHER_KEY`` and ``NOCERT_KEY_PASSPHRASE``
set) with its stdout and stderr captured to files runs a full scenario: departments and keys, checks
through every life (idempotent repeats included), proofs sealed, verified and revoked, a seal rotated
and revoked, every read by every role, and the usual mistakes and attacks (unknown, malformed and
revoked keys, brute force up to 429, invalid identity numbers, oversized and malformed bodies, hostile
paths). Then every log line is scanned for: every API key issued or tried (and its secret part alone),
the admin key, the cipher key, the key passphrase, ``PRIVATE KEY``, the raw bytes of every private key
in the key directory (hex, base64, base64url), the body of every key file, and every full identity
number used. None may appear.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from api.ratelimit import FAILURE_LIMIT
from domain.identifiers import make_id_number
from tests.bodies import APPLICANT, OTHER_NUMBER, check_body
from tests.reliability.support import ADMIN_KEY, Province, Server, server_env

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "strict-transport-security": "max-age=31536000",
    "x-permitted-cross-domain-policies": "none",
}
API_HEADERS = {"cache-control": "no-store", "content-security-policy": "default-src 'none'; frame-ancestors 'none'"}


def _encodings(raw: bytes) -> list[str]:
    return [
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


@pytest.mark.timeout(180)
def test_security_headers_everywhere_and_no_secret_in_any_log(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    passphrase = "pass-" + secrets.token_urlsafe(24)
    cipher_key = base64.b64encode(os.urandom(32)).decode()
    env = server_env(
        f"sqlite:///{tmp_path}/store/nocert.db", key_dir, NOCERT_KEY_PASSPHRASE=passphrase, NOCERT_CIPHER_KEY=cipher_key
    )
    server = Server(tmp_path / "server", env)
    tried_keys: list[str] = []
    identity_numbers = {APPLICANT, OTHER_NUMBER, make_id_number("35010419880202456"), make_id_number("35020319700303789")}
    responses: list[httpx.Response] = []
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=30, event_hooks={"response": [lambda r: responses.append(r)]}) as client:
            province = Province.create(client)
            approver, gulou, city, auditor = (province.headers(n) for n in ("approver", "gulou", "city", "auditor"))
            admin = province.headers("admin")
            extra = client.post("/v1/departments/fz-estate/api-keys", json={}, headers=admin).json()
            province.keys["extra"] = extra["api_key"]

            # Checks through their lives, with full identity numbers in the applicant and in claims.
            lives = []
            for number in sorted(identity_numbers - {make_id_number("35020319700303789")}):
                body = check_body(applicant={"name": "林某某", "id_number": number},
                                  claims={"question": "是否同一人", "other_id_number": OTHER_NUMBER, "spouse_id_number": APPLICANT})
                first = client.post("/v1/checks", json=body, headers={**approver, "Idempotency-Key": f"raise-{number}"})
                again = client.post("/v1/checks", json=body, headers={**approver, "Idempotency-Key": f"raise-{number}"})
                assert first.status_code == again.status_code == 201, first.text
                lives.append(first.json())
            a, b, c = lives
            issuer_of = {check["id"]: (gulou if check["issuer"] == "fz-gulou-police" else city) for check in lives}
            assert client.post(f"/v1/checks/{a['id']}/accept", json={}, headers=issuer_of[a["id"]]).status_code == 200
            client.post(f"/v1/checks/{a['id']}/request-info", json={"question": f"核对 {APPLICANT}"}, headers=issuer_of[a["id"]])
            client.post(f"/v1/checks/{a['id']}/supply-info", json={"answer": f"身份证 {OTHER_NUMBER}"}, headers=approver)
            replied = client.post(f"/v1/checks/{a['id']}/reply", json={"conclusion": "confirmed", "statements": {"id_number": APPLICANT}},
                                  headers=issuer_of[a["id"]])
            assert replied.status_code == 200, replied.text
            proof = replied.json()["proof"]
            client.post(f"/v1/checks/{a['id']}/close", json={"outcome": "exempted"}, headers=approver)
            client.post(f"/v1/checks/{a['id']}/accept", json={}, headers=issuer_of[a["id"]])  # 409: closed
            client.post(f"/v1/checks/{b['id']}/decline", json={"reason_code": "no_record", "note": f"查无 {b['applicant']['id_number']}"},
                        headers=issuer_of[b["id"]])
            if issuer_of[c["id"]] is gulou:
                client.post(f"/v1/checks/{c['id']}/forward", json={"to": "fz-police", "reason": "转办"}, headers=gulou)
            client.post(f"/v1/checks/{c['id']}/withdraw", json={"reason": "撤回"}, headers=approver)

            # Proofs and seals.
            client.post("/v1/proofs/verify", json={"jws": proof["jws"]}, headers=auditor)
            client.post(f"/v1/proofs/{proof['id']}/revoke", json={"reason": "误发"}, headers=issuer_of[a["id"]])
            client.post("/v1/departments/fz-gulou-police/keys", json={}, headers=admin)
            client.post(f"/v1/departments/fz-police/keys/{proof['kid']}/revoke", json={"reason": "test"}, headers=admin)

            # Every read, by every role.
            for who in ("approver", "gulou", "city", "auditor", "stranger", "admin"):
                headers = province.headers(who)
                for check in lives:
                    client.get(f"/v1/checks/{check['id']}", headers=headers)
                    client.get(f"/v1/checks/{check['id']}/history", headers=headers)
                    client.get(f"/v1/checks/{check['id']}?version=1", headers=headers)
                for path in ("/v1/checks", "/v1/inbox", "/v1/coverage", "/v1/departments", "/v1/categories",
                             f"/v1/proofs/{proof['id']}", "/v1/audit/events", "/v1/audit/checkpoints/latest"):
                    client.get(path, headers=headers)
            for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/v1/trust/root"):
                client.get(path)

            # Mistakes and attacks.
            wrong = [
                f"nck_fz-estate_{extra['api_key_id']}_{secrets.token_urlsafe(32)}",
                "nck_" + secrets.token_urlsafe(40),
                secrets.token_hex(32),
                province.keys["approver"][:-3] + "AAA",
            ]
            tried_keys += wrong
            for key in wrong * (FAILURE_LIMIT // len(wrong) + 2):  # past the brute-force limit: 429s and a warning
                client.get("/v1/inbox", headers={"Authorization": f"Bearer {key}"})
            client.delete(f"/v1/departments/fz-estate/api-keys/{extra['api_key_id']}", headers=admin)
            client.get("/v1/checks", headers={"Authorization": f"Bearer {extra['api_key']}"})  # revoked
            for bad_number in (APPLICANT[:-1] + ("0" if APPLICANT[-1] != "0" else "1"), APPLICANT[:17], APPLICANT + "9"):
                identity_numbers.add(bad_number)
                client.post("/v1/checks", json=check_body(applicant={"name": "x", "id_number": bad_number}), headers=approver)
            client.post("/v1/checks", json=check_body(claims={"other_id_number": APPLICANT, "pad": "x" * 70_000}), headers=approver)
            client.post("/v1/checks", content=f'{{"applicant": {{"id_number": "{APPLICANT}"'.encode(),
                        headers={**approver, "Content-Type": "application/json"})
            client.post("/v1/checks", json=check_body(), headers={**approver, "Idempotency-Key": f"raise-{APPLICANT}"})  # mismatch
            client.get(f"/v1/checks/{APPLICANT}", headers=approver)
            client.get(f"/v1/checks/{a['id']}/../{APPLICANT}", headers=auditor)
            client.post("/v1/departments", json={"id": "x-y", "name": "n", "uscc": APPLICANT, "roles": ["approver"],
                                                 "kind": "k", "region": "350102"}, headers=admin)

        # Headers on every response the scenario got: success, errors, replays, 429s, public paths.
        statuses = {r.status_code for r in responses}
        assert {200, 201, 204, 401, 404, 409, 413, 422, 429} <= statuses, statuses
        for response in responses:
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.get(name) == value, f"{response.request.method} {response.request.url.path} {response.status_code}: {name}"
            if response.request.url.path.startswith("/v1"):
                for name, value in API_HEADERS.items():
                    assert response.headers.get(name) == value, f"{response.request.url.path}: {name}"
            assert "x-powered-by" not in response.headers
    finally:
        server.stop()
        server.kill9()

    logs = server.logs()
    assert "nocert serving on sqlite store" in logs and '"route": "/v1/checks"' in logs, "the logs were not captured"
    secrets_found: list[str] = []
    needles: dict[str, str] = {"admin key": ADMIN_KEY, "cipher key": cipher_key, "key passphrase": passphrase}
    for name, key in {**province.keys, **{f"tried {n}": k for n, k in enumerate(tried_keys)}}.items():
        if name == "admin":
            continue
        needles[f"API key {name}"] = key
        needles[f"secret part of API key {name}"] = key.split("_", 3)[-1]  # the random part may hold "_" itself
    for number in identity_numbers:
        needles[f"identity number {number[:6]}…"] = number
    needles["PEM private key"] = "PRIVATE KEY"
    key_files = sorted(key_dir.glob("*.key"))
    assert len(key_files) >= 5, "root, ledger and three seals expected in the key directory"
    for path in key_files:
        pem = path.read_bytes()
        body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
        needles[f"{path.name} file body"] = body[:48]
        key = serialization.load_pem_private_key(pem, password=passphrase.encode())
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        for n, text in enumerate(_encodings(raw)):
            needles[f"{path.name} raw key #{n}"] = text
    for name, needle in needles.items():
        if needle and needle in logs:
            line = next(line for line in logs.splitlines() if needle in line)
            secrets_found.append(f"{name} in: {line[:200]}")
    # And no 17 digits + check character next to each other anywhere (any identity number, not only ours).
    for match in re.finditer(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9X](?![0-9A-Za-z])", logs):
        secrets_found.append(f"an identity-number-like string: …{match.group(0)[-4:]}")
    print(f"\n[secrets] {len(logs.splitlines())} log lines, {len(needles)} secrets looked for, "
          f"{len(responses)} responses checked for headers; found {len(secrets_found)}")
    assert not secrets_found, "\n".join(secrets_found)
