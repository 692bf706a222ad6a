"""Hostile input: malformed, oversized, out-of-range, injected and traversing requests are refused with a
4xx problem (never a 5xx, never a stack trace) and change nothing; a stateful fuzzing run with every
role's key never gets a 5xx either.

``test_hand_written_hostile_requests`` (SQLite and PostgreSQL, in-process ASGI with raw scopes, so no
client library tidies the request first): deeply nested and oversized JSON (declared, chunked and lying
Content-Length), invalid UTF-8, a BOM, lone surrogates, duplicate keys, numbers out of range (``1e309``,
5000-digit integers, ``NaN``), NUL in names, a JSON Schema whose ``$ref`` leads nowhere, CR/LF, NUL and
non-ASCII bytes in ``Idempotency-Key``/``Authorization``/``Content-Type``, and ``../``, ``%2e%2e``,
``%2f`` and NUL in every kind of id in the path and the query. Each answer is 4xx
``application/problem+json`` with a code of the table and the matching status, carries the security
headers, and the event log's head is the same before and after. Forged proofs with those defects are
``valid: false``/``malformed`` (a 200 by the contract), never an error.

``test_stateful_fuzzing_with_every_role`` (SQLite): schemathesis' state machine over the OpenAPI (links
inferred from the schema), each call sent with the key of the role the operation needs most of the time
and of any other role, a revoked or a made-up key otherwise, some with junk Idempotency-Keys. Every
answer is below 500; every error is a problem with a known code; every answer carries the security
headers; afterwards the views still equal a rebuild from the log. Its length is
``NOCERT_FUZZ_SECONDS`` (default 30). The plain schema conformance run lives in tests/api/.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.problems import STATUS_OF_CODE
from domain.identifiers import make_id_number
from tests.bodies import CATEGORY, check_body
from tests.reliability.support import ADMIN_KEY, Province, converge_and_rebuild, open_services, server_env

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "strict-transport-security")
JSON = (b"content-type", b"application/json")
# POSTs that record no event, so answer without X-Event-Position (API.md §5 verify, §14 the access log).
QUERY_PATHS = frozenset({"/v1/proofs/verify", "/v1/subjects/accesses"})


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def _asgi(app: Any, method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> Answer:
    """One request straight into the ASGI app: ``raw_path`` decoded the way uvicorn does it."""
    raw, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw.decode("latin-1")),
        "raw_path": raw,
        "query_string": query,
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in headers],
        "client": ("203.0.113.9", 50000),
        "server": ("testserver", 80),
    }
    pending = list(chunks) or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers: dict[str, str] = {}
    for name, value in start.get("headers", []):
        answer_headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return Answer(start["status"], answer_headers, body)


@dataclass
class World:
    app: Any
    client: TestClient
    province: Province
    services: Any
    check_id: str
    proof_jws: str
    kid: str
    api_key_id: str

    def call(self, method: str, raw_path: bytes, who: str | None = "approver", headers: list[tuple[bytes, bytes]] | None = None,
             chunks: list[bytes] | None = None, auth: bytes | None = None) -> Answer:
        sent = list(headers or [])
        if auth is not None:
            sent.append((b"authorization", auth))
        elif who is not None:
            sent.append((b"authorization", f"Bearer {self.province.keys[who]}".encode()))
        return self.client.portal.call(_asgi, self.app, method, raw_path, sent, list(chunks or []))


@pytest.fixture
def world(durable_database_url: str, tmp_path: Path) -> Iterator[World]:
    services = open_services(durable_database_url, tmp_path / "keys")
    try:
        app = create_app(services)
        with TestClient(app) as client:
            province = Province.create(client)
            check = client.post("/v1/checks", json=check_body(), headers=province.headers("approver")).json()
            replied = client.post(
                "/v1/checks", json=check_body(), headers=province.headers("approver")
            ).json()
            answer = client.post(
                f"/v1/checks/{replied['id']}/reply",
                json={"conclusion": "confirmed", "statements": {}},
                headers=province.headers("gulou"),
            ).json()
            departments = client.get("/v1/departments", headers=province.headers("admin")).json()["items"]
            gulou = next(d for d in departments if d["id"] == "fz-gulou-police")
            key = client.post("/v1/departments/fz-estate/api-keys", json={}, headers=province.headers("admin")).json()
            yield World(app, client, province, services, check["id"], answer["proof"]["jws"],
                        gulou["certificates"][0]["kid"], key["api_key_id"])
    finally:
        services.close()


def _deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _body(**overrides: Any) -> bytes:
    return json.dumps(check_body(**overrides), ensure_ascii=False).encode()


def hostile_cases(w: World) -> list[tuple[str, str, bytes, str | None, list[tuple[bytes, bytes]], list[bytes], bytes | None]]:
    """(label, method, raw path, role, headers, body chunks, raw Authorization) of every hostile request."""
    cid = w.check_id.encode()
    reply = b"/v1/checks/" + cid + b"/reply"
    ok_reply = b'{"conclusion":"confirmed","statements":%s,"valid_days":90}'
    category = b'{"code":"hostile","name":"n","issuer_kind":"police","modes":["collaboration"],"sla_hours":%s}'
    big = b'{"purpose":"' + b"x" * 70_000 + b'"}'
    idem = b"idempotency-key"
    cases: list[tuple[str, str, bytes, str | None, list[tuple[bytes, bytes]], list[bytes], bytes | None]] = [
        # -- bodies --------------------------------------------------------------------------------
        ("nested arrays 30000 deep", "POST", b"/v1/checks", "approver", [JSON], [_deep_array(30_000)], None),
        ("nested objects 10000 deep", "POST", b"/v1/checks", "approver", [JSON], [_deep_object(10_000)], None),
        ("nested claims", "POST", b"/v1/checks", "approver", [JSON],
         [b'{"claims":' + _deep_object(9_000) + b"}"], None),
        ("nesting with idempotency", "POST", b"/v1/checks", "approver", [JSON, (idem, b"deep-1")], [_deep_array(30_000)], None),
        ("70 KB with Content-Length", "POST", b"/v1/checks", "approver", [JSON, (b"content-length", str(len(big)).encode())], [big], None),
        ("70 KB chunked", "POST", b"/v1/checks", "approver", [JSON], [big[i:i + 8192] for i in range(0, len(big), 8192)], None),
        ("Content-Length lies low", "POST", b"/v1/checks", "approver", [JSON, (b"content-length", b"10")], [big], None),
        ("Content-Length huge", "POST", b"/v1/checks", "approver", [JSON, (b"content-length", b"99999999999999999999")], [b"{}"], None),
        ("Content-Length negative", "POST", b"/v1/checks", "approver", [JSON, (b"content-length", b"-1")], [big], None),
        ("invalid UTF-8", "POST", b"/v1/checks", "approver", [JSON], [b'{"category":"\xff\xfe\xc3"}'], None),
        ("UTF-8 BOM", "POST", b"/v1/checks", "approver", [JSON], [b"\xef\xbb\xbf" + _body()], None),
        ("overlong UTF-8 slash", "POST", b"/v1/checks", "approver", [JSON], [b'{"category":"\xc0\xaf"}'], None),
        ("lone surrogate in claims", "POST", b"/v1/checks", "approver", [JSON],
         [_body(claims={"q": "SURROGATE"}).replace(b"SURROGATE", b"\\ud800")], None),
        ("lone surrogate as key", "POST", reply, "gulou", [JSON], [ok_reply % b'{"\\udfff":1}'], None),
        ("duplicate keys", "POST", b"/v1/checks", "approver", [JSON], [b'{"category":"a","category":"b"}'], None),
        ("duplicate nested keys", "POST", reply, "gulou", [JSON], [ok_reply % b'{"a":1,"a":2}'], None),
        ("1e309 in statements", "POST", reply, "gulou", [JSON], [ok_reply % b'{"n":1e309}'], None),
        ("-1e309 in statements", "POST", reply, "gulou", [JSON], [ok_reply % b'{"n":-1e309}'], None),
        ("1e309 sla_hours", "POST", b"/v1/categories", "admin", [JSON], [category % b"1e309"], None),
        ("5000-digit integer", "POST", b"/v1/categories", "admin", [JSON], [category % (b"9" * 5000)], None),
        ("NaN", "POST", reply, "gulou", [JSON], [ok_reply % b'{"n":NaN}'], None),
        ("Infinity", "POST", reply, "gulou", [JSON], [ok_reply % b'{"n":-Infinity}'], None),
        ("valid_days 2**64", "POST", reply, "gulou", [JSON],
         [b'{"conclusion":"confirmed","statements":{},"valid_days":18446744073709551616}'], None),
        ("valid_days 90.0", "POST", reply, "gulou", [JSON], [b'{"conclusion":"confirmed","statements":{},"valid_days":90.0}'], None),
        ("valid_days true", "POST", reply, "gulou", [JSON], [b'{"conclusion":"confirmed","statements":{},"valid_days":true}'], None),
        ("NUL in a category name", "POST", b"/v1/categories", "admin", [JSON],
         [b'{"code":"nul","name":"a\\u0000b","issuer_kind":"police","modes":["collaboration"],"sla_hours":1}'], None),
        ("NUL in a category rename", "PATCH", b"/v1/categories/" + CATEGORY.encode(), "admin", [JSON], [b'{"name":"\\u0000"}'], None),
        ("$ref to nowhere", "POST", b"/v1/categories", "admin", [JSON],
         [b'{"code":"ref","name":"n","issuer_kind":"police","modes":["collaboration"],"sla_hours":1,"claims_schema":{"$ref":"#/x"}}'], None),
        ("remote $ref", "PATCH", b"/v1/categories/" + CATEGORY.encode(), "admin", [JSON],
         [b'{"claims_schema":{"$ref":"http://169.254.169.254/latest/meta-data"}}'], None),
        ("self $ref", "PATCH", b"/v1/categories/" + CATEGORY.encode(), "admin", [JSON], [b'{"claims_schema":{"$ref":"#"}}'], None),
        ("text/plain", "POST", b"/v1/checks", "approver", [(b"content-type", b"text/plain")], [_body()], None),
        ("JSON array body", "POST", b"/v1/checks", "approver", [JSON], [b"[1,2,3]"], None),
        ("JSON string body", "POST", b"/v1/checks", "approver", [JSON], [b'"x"'], None),
        ("empty object", "POST", b"/v1/checks", "approver", [JSON], [b"{}"], None),
        ("extra field", "POST", b"/v1/checks", "approver", [JSON], [_body(admin=True)], None),
        ("id number with NUL", "POST", b"/v1/checks", "approver", [JSON],
         [_body(applicant={"name": "x", "id_number": make_id_number("35010219900101123")[:17] + "\u0000"})], None),
        # -- headers -------------------------------------------------------------------------------
        ("Idempotency-Key CR/LF", "POST", b"/v1/checks", "approver", [JSON, (idem, b"a\r\nX-Injected: 1")], [_body()], None),
        ("Idempotency-Key LF", "POST", b"/v1/checks/" + cid + b"/accept", "gulou", [JSON, (idem, b"k\nSet-Cookie: a=b")], [b"{}"], None),
        ("Idempotency-Key NUL", "POST", b"/v1/checks", "approver", [JSON, (idem, b"a\x00b")], [_body()], None),
        ("Idempotency-Key latin-1", "POST", b"/v1/checks", "approver", [JSON, (idem, b"cl\xe9")], [_body()], None),
        ("Idempotency-Key 256", "POST", b"/v1/checks", "approver", [JSON, (idem, b"k" * 256)], [_body()], None),
        ("Idempotency-Key empty", "POST", b"/v1/checks", "approver", [JSON, (idem, b"")], [_body()], None),
        ("Idempotency-Key tab", "POST", b"/v1/checks", "approver", [JSON, (idem, b"a\tb")], [_body()], None),
        ("Content-Type injection", "POST", b"/v1/checks", "approver",
         [(b"content-type", b"application/json\r\nX-Evil: 1")], [_body()], None),
        ("Authorization CR/LF", "GET", b"/v1/inbox", None, [], [], b"Bearer nck_x\r\nX-Admin: 1"),
        ("Authorization NUL", "GET", b"/v1/inbox", None, [], [], b"Bearer nck_fz-estate_\x00_x"),
        ("Authorization latin-1", "GET", b"/v1/inbox", None, [], [], b"Bearer \xff\xfe"),
        ("Authorization traversal", "GET", b"/v1/inbox", None, [], [], b"Bearer nck_../../etc_x_y"),
        ("Authorization 60 KB", "GET", b"/v1/inbox", None, [], [], b"Bearer " + b"A" * 60_000),
        ("admin key with NUL", "GET", b"/v1/departments", None, [], [], b"Bearer " + ADMIN_KEY.encode() + b"\x00"),
        # -- paths and queries ---------------------------------------------------------------------
        ("raw ../", "GET", b"/v1/checks/../departments", "approver", [], [], None),
        ("%2e%2e", "GET", b"/v1/checks/%2e%2e", "approver", [], [], None),
        ("%2e%2e%2f to /etc/passwd", "GET", b"/v1/checks/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "approver", [], [], None),
        ("NUL id", "GET", b"/v1/checks/%00", "approver", [], [], None),
        ("NUL after id, idempotent", "POST", b"/v1/checks/" + cid + b"%00/accept", "gulou", [JSON, (idem, b"nul-1")], [b"{}"], None),
        ("NUL id, idempotent", "POST", b"/v1/checks/%00/withdraw", "approver", [JSON, (idem, b"nul-2")], [b'{"reason":"x"}'], None),
        ("uppercase id, wrong role", "POST", b"/v1/checks/" + cid.upper() + b"/accept", "approver", [JSON], [b"{}"], None),
        ("history of ..", "GET", b"/v1/checks/..%2f..%2f/history", "auditor", [], [], None),
        ("department ../", "POST", b"/v1/departments/..%2f..%2fadmin/api-keys", "admin", [JSON, (idem, b"dept-1")], [b"{}"], None),
        ("department NUL", "POST", b"/v1/departments/fz-estate%00/keys", "admin", [JSON], [b"{}"], None),
        ("api key id ../", "DELETE", b"/v1/departments/fz-estate/api-keys/..%2f..%2f" + w.api_key_id.encode(), "admin", [], [], None),
        ("api key id NUL", "DELETE", b"/v1/departments/fz-estate/api-keys/" + w.api_key_id.encode() + b"%00", "admin", [], [], None),
        ("kid ../", "POST", b"/v1/departments/fz-gulou-police/keys/%2e%2e/revoke", "admin", [JSON], [b'{"reason":"x"}'], None),
        ("kid NUL", "POST", b"/v1/departments/fz-gulou-police/keys/" + w.kid.encode() + b"%00/revoke", "admin", [JSON],
         [b'{"reason":"x"}'], None),
        ("proof ../", "GET", b"/v1/proofs/%2e%2e%2f%2e%2e", "approver", [], [], None),
        ("proof revoke NUL", "POST", b"/v1/proofs/%00/revoke", "gulou", [JSON, (idem, b"nul-3")], [b'{"reason":"x"}'], None),
        ("category ../", "PATCH", b"/v1/categories/..%2f..", "admin", [JSON], [b'{"name":"x"}'], None),
        ("category NUL", "PATCH", b"/v1/categories/%00", "admin", [JSON], [b'{"name":"x"}'], None),
        ("category 4 KB", "PATCH", b"/v1/categories/" + b"a" * 4096, "admin", [JSON], [b'{"name":"x"}'], None),
        ("path 8 KB", "GET", b"/v1/checks/" + b"%2e" * 2700, "approver", [], [], None),
        ("invalid UTF-8 in path", "GET", b"/v1/checks/%ff%fe%c3", "approver", [], [], None),
        ("version ..", "GET", b"/v1/checks/" + cid + b"?version=..%2f", "approver", [], [], None),
        ("version NUL", "GET", b"/v1/checks/" + cid + b"?version=%00", "approver", [], [], None),
        ("version huge", "GET", b"/v1/checks/" + cid + b"?version=99999999999999999999999", "approver", [], [], None),
        ("version negative", "GET", b"/v1/checks/" + cid + b"?version=-1", "approver", [], [], None),
        ("as_of NUL", "GET", b"/v1/checks/" + cid + b"?as_of=%00", "approver", [], [], None),
        ("as_of year 0", "GET", b"/v1/checks/" + cid + b"?as_of=0000-01-01T00:00:00Z", "approver", [], [], None),
        ("min_position 1e309", "GET", b"/v1/checks/" + cid + b"?min_position=1e309", "approver", [], [], None),
        ("min_position 2**64", "GET", b"/v1/checks?min_position=18446744073709551616", "approver", [], [], None),
        ("status NUL", "GET", b"/v1/checks?status=%00", "approver", [], [], None),
        ("category traversal filter", "GET", b"/v1/checks?category=..%2f..", "approver", [], [], None),
        ("cursor NUL", "GET", b"/v1/checks?cursor=%00", "approver", [], [], None),
        ("cursor of JSON junk", "GET", b"/v1/departments?cursor=WyJ4IiwgIlx1ZDgwMCJd", "approver", [], [], None),
        ("limit 1e309", "GET", b"/v1/inbox?limit=1e309", "gulou", [], [], None),
        ("limit 0", "GET", b"/v1/departments?limit=0", "approver", [], [], None),
        ("audit after -1", "GET", b"/v1/audit/events?after=-1", "auditor", [], [], None),
        ("audit limit NUL", "GET", b"/v1/audit/events?limit=%00", "auditor", [], [], None),
        ("inclusion huge", "GET", b"/v1/audit/proofs/inclusion?index=0&tree_size=4611686018427387904", "auditor", [], [], None),
        ("consistency reversed", "GET", b"/v1/audit/proofs/consistency?first=5&second=1", "auditor", [], [], None),
        ("region NUL", "GET", b"/v1/coverage?region=%00", "approver", [], [], None),
        ("duplicate query", "GET", b"/v1/checks/" + cid + b"?version=1&as_of=2020-01-01T00:00:00Z", "approver", [], [], None),
        ("PROPFIND", "PROPFIND", b"/v1/checks", "approver", [], [], None),
        ("TRACE", "TRACE", b"/v1/checks/" + cid, "approver", [], [], None),
    ]
    return cases


def _is_problem(answer: Answer) -> str | None:
    """None when ``answer`` is a well-formed 4xx problem with the security headers, else what is wrong."""
    if not 400 <= answer.status < 500:
        return f"status {answer.status}"
    if not answer.headers.get("content-type", "").startswith("application/problem+json"):
        return f"content-type {answer.headers.get('content-type')}"
    try:
        problem = answer.json()
    except ValueError:
        return "body is no JSON"
    for name in ("type", "title", "status", "detail", "code"):
        if name not in problem:
            return f"no {name!r} in the problem"
    if STATUS_OF_CODE.get(problem["code"]) != answer.status or problem["status"] != answer.status:
        return f"code {problem['code']!r} with status {answer.status}"
    if "Traceback" in answer.body.decode("utf-8", "replace"):
        return "a stack trace in the body"
    missing = [name for name in SECURITY_HEADERS if name not in answer.headers]
    if missing:
        return f"missing security headers {missing}"
    return None


@pytest.mark.timeout(180)
def test_hand_written_hostile_requests(world: World) -> None:
    head = world.services.log.max_position()
    bad: list[str] = []
    seen: Counter[str] = Counter()
    for label, method, path, who, headers, chunks, auth in hostile_cases(world):
        answer = world.call(method, path, who, headers, chunks, auth)
        wrong = _is_problem(answer)
        seen[f"{answer.status}"] += 1
        if wrong:
            bad.append(f"{label}: {wrong}: {answer.body[:300]!r}")
        if world.services.log.max_position() != head:
            bad.append(f"{label}: the log moved from {head} to {world.services.log.max_position()}")
            head = world.services.log.max_position()
        if b"X-Injected" in b"".join(f"{k}: {v}".encode("latin-1") for k, v in answer.headers.items()):
            bad.append(f"{label}: an injected header came back")
    print(f"\n[hostile] {sum(seen.values())} requests: {dict(seen)}")
    assert not bad, "\n".join(bad)


def _jws(header: bytes, payload: bytes, signature: bytes = b"\0" * 64) -> str:
    import base64

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(payload)}.{b64(signature)}"


def test_forged_proofs_are_invalid_never_errors(world: World) -> None:
    head = world.services.log.max_position()
    header = b'{"alg":"EdDSA","typ":"nocert-proof+jws","kid":"k"}'
    real_header, real_payload, real_signature = world.proof_jws.split(".")
    forged = {
        "lone surrogate": _jws(header, b'{"issuer":{"id":"\\ud800"}}'),
        "1e309": _jws(header, b'{"valid_until":1e309}'),
        "NaN": _jws(header, b'{"issued_at":NaN}'),
        "duplicate members": _jws(header, b'{"id":"a","id":"b"}'),
        "deep payload": _jws(header, _deep_object(5_000)),
        "alg none": _jws(b'{"alg":"none"}', b"{}", b""),
        "alg HS256 with the x5c": _jws(b'{"alg":"HS256"}', b"{}"),
        "invalid UTF-8 header": _jws(b'{"alg":"\xff"}', b"{}"),
        "padded base64": real_header + "==." + real_payload + "." + real_signature,
        "four parts": world.proof_jws + ".x",
        "payload swapped": ".".join([real_header, _jws(header, b'{"conclusion":"confirmed"}').split(".")[1], real_signature]),
        "NUL": "a\u0000.b.c",
    }
    for label, jws in forged.items():
        response = world.client.post("/v1/proofs/verify", json={"jws": jws}, headers=world.province.headers("auditor"))
        assert response.status_code in (200, 422), f"{label}: {response.status_code} {response.text[:300]}"
        if response.status_code == 200:
            assert response.json()["valid"] is False, label
    assert world.services.log.max_position() == head


# -- stateful fuzzing --------------------------------------------------------------------------------

ROLE_OF: list[tuple[str, str, str]] = [
    ("POST", "/v1/departments", "admin"),
    ("DELETE", "/v1/departments", "admin"),
    ("POST", "/v1/categories", "admin"),
    ("PATCH", "/v1/categories", "admin"),
    ("POST", "/v1/checks/{check_id}/accept", "issuer"),
    ("POST", "/v1/checks/{check_id}/request-info", "issuer"),
    ("POST", "/v1/checks/{check_id}/forward", "issuer"),
    ("POST", "/v1/checks/{check_id}/reply", "issuer"),
    ("POST", "/v1/checks/{check_id}/decline", "issuer"),
    ("POST", "/v1/proofs/{proof_id}/revoke", "issuer"),
    ("GET", "/v1/inbox", "issuer"),
    ("POST", "/v1/checks", "approver"),
    ("POST", "/v1/checks/{check_id}", "approver"),
    ("GET", "/v1/audit", "auditor"),
]


def _role_for(method: str, path: str) -> str | None:
    for wanted_method, prefix, role in ROLE_OF:
        if method == wanted_method and path.startswith(prefix):
            return role
    return None


@dataclass
class FuzzRecord:
    statuses: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    calls: int = 0


def test_stateful_fuzzing_with_every_role(sqlite_url: str, tmp_path: Path) -> None:
    import hypothesis
    import schemathesis
    from hypothesis.errors import Flaky, Unsatisfiable

    budget = float(os.environ.get("NOCERT_FUZZ_SECONDS", "30"))
    seed = random.randrange(2**32)
    rnd = random.Random(seed)
    key_dir = tmp_path / "keys"
    services = open_services(sqlite_url, key_dir)
    record = FuzzRecord()
    try:
        app = create_app(services)
        with TestClient(app) as client:
            province = Province.create(client)
            # A revoked key of a real department, and checks in several states addressed to both issuers.
            extra = client.post("/v1/departments/fz-estate/api-keys", json={}, headers=province.headers("admin")).json()
            client.delete(f"/v1/departments/fz-estate/api-keys/{extra['api_key_id']}", headers=province.headers("admin"))
            keys = {**province.keys, "revoked": extra["api_key"], "made-up": "nck_fz-estate_0000000000000000_" + "x" * 43}
            for n, (issuer, action) in enumerate([("gulou", None), ("gulou", "accept"), ("city", "reply"), ("city", None)]):
                body = check_body(issuer=province.ids[issuer], purpose=f"seed {n}")
                check = client.post("/v1/checks", json=body, headers=province.headers("approver")).json()
                if action == "accept":
                    client.post(f"/v1/checks/{check['id']}/accept", json={}, headers=province.headers(issuer))
                if action == "reply":
                    client.post(f"/v1/checks/{check['id']}/reply", json={"conclusion": "confirmed", "statements": {}},
                                headers=province.headers(issuer))

            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            base = schema.as_state_machine()
            everyone = list(keys)

            class Fuzzer(base):  # type: ignore[misc, valid-type]
                def before_call(self, case: Any) -> None:
                    method, path = case.method.upper(), case.path
                    role = _role_for(method, path)
                    roll = rnd.random()
                    if roll < 0.7 and role is not None:
                        who = rnd.choice(["gulou", "city"]) if role == "issuer" else role
                    elif roll < 0.95:
                        who = rnd.choice(["admin", "approver", "gulou", "city", "auditor", "stranger"])
                    else:
                        who = rnd.choice(everyone)
                    headers = dict(case.headers or {})
                    headers["Authorization"] = f"Bearer {keys[who]}"
                    if method == "POST" and rnd.random() < 0.3:
                        headers["Idempotency-Key"] = rnd.choice(
                            [uuid.uuid4().hex, "fixed-key", "k" * 255, "k" * 256, "é", "a b", "a\tb"]
                        )
                    case.headers = headers
                    if method == "POST" and path == "/v1/checks" and rnd.random() < 0.5:
                        case.body = check_body(
                            applicant={"name": "林某某", "id_number": rnd.choice(
                                [make_id_number("35010219900101123"), make_id_number("35010419880202456")]
                            )}
                        )
                    if case.query and "min_position" in case.query:  # never wait 5 s for a position nobody wrote
                        case.query["min_position"] = rnd.randint(0, services.log.max_position())

                def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
                    record.calls += 1
                    status = response.status_code
                    record.statuses[f"{status // 100}xx"] += 1
                    record.statuses[str(status)] += 1
                    if case.method.upper() != "GET" and status < 300:
                        record.writes[f"{case.method.upper()} {case.path}"] += 1
                    where = f"{case.method} {getattr(case, 'formatted_path', case.path)} {case.query or ''}"
                    headers = {k.lower(): v for k, v in response.headers.items()}
                    if status >= 500:
                        record.problems.append(f"{where}: {status} {response.text[:300]}")
                    missing = [name for name in SECURITY_HEADERS if name not in headers]
                    if missing:
                        record.problems.append(f"{where}: missing {missing}")
                    content_type = headers.get("content-type", [""])
                    content_type = content_type[0] if isinstance(content_type, list) else content_type
                    if status >= 400:
                        try:
                            problem = json.loads(response.text)
                        except ValueError:
                            problem = {}
                        if not content_type.startswith("application/problem+json") or STATUS_OF_CODE.get(
                            problem.get("code")
                        ) != status:
                            record.problems.append(f"{where}: {status} {content_type} {response.text[:200]}")
                    elif case.method.upper() in ("POST", "PATCH", "DELETE") and status < 300:
                        if "x-event-position" not in headers and case.path not in QUERY_PATHS:
                            record.problems.append(f"{where}: {status} without X-Event-Position")

            settings = hypothesis.settings(
                max_examples=40,
                stateful_step_count=12,
                deadline=None,
                database=None,
                phases=[hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            deadline = time.monotonic() + budget
            suites = 0
            while time.monotonic() < deadline:
                suites += 1
                try:
                    Fuzzer.run(settings=settings)
                except (Flaky, Unsatisfiable):
                    pass  # the server's state moved between replays: this suite is over, start another
            head = services.log.max_position()
            convergence = converge_and_rebuild(sqlite_url, key_dir, server_env(sqlite_url, key_dir))
    finally:
        services.close()
    print(
        f"\n[fuzz] seed={seed} suites={suites} calls={record.calls} log_head={head} "
        f"statuses={dict(sorted(record.statuses.items()))} accepted_writes={dict(record.writes)} "
        f"problems={len(record.problems)}"
    )
    assert record.calls > 100, "the fuzzer hardly ran"
    assert not record.problems, "\n".join(record.problems[:30])
    assert not convergence.differences, "\n".join(convergence.differences)
    assert convergence.audit.get("ok") is True, f"nocert audit verify: {convergence.audit}"
