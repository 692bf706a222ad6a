"""Clients generated from /openapi.json drive the service (issue 12, "done when"):

- ``openapi-python-client generate`` runs without a warning, and its client, imported from a temporary
  directory, takes a check through raise → accept → reply → close and meets the error cases of API.md §9 a
  conforming client can cause, against a live server on both stores, with the generated models only (no
  hand-made headers or bodies); and meets, parsed as its ``Problem``, the §9 answers a client does not cause
  itself: a body changed on the way (``malformed_json``, ``unsupported_media_type``), two requests at once
  (``idempotency_in_progress``, ``concurrent_update``) and a store that does not answer (``unavailable``);
- ``openapi-typescript`` types compile under ``tsc --module NodeNext --moduleResolution NodeNext --strict``,
  together with every request example typed as its schema, and type those answers as ``Problem``.

The tools come from the test extras (Python) and from an npm install into a cache directory that the test
does itself (``NOCERT_NPM_TOOLS``, default ``~/.cache/nocert-tests/npm``). A missing tool skips, and fails
under ``NOCERT_REQUIRE_POSTGRES=1`` (CI); an npm registry that cannot be reached skips with its reason.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.bootstrap import build
from api.examples import EXAMPLES
from tests.api.conftest import (
    ADMIN_KEY,
    APPLICANT_XIAMEN,
    Province,
    live_server,
    new_uscc,
    running_app,
    settings_for,
)
from tests.bodies import APPLICANT, CATEGORY, OTHER_NUMBER

REQUIRE_TOOLS = os.environ.get("NOCERT_REQUIRE_POSTGRES") == "1"
PACKAGE = "nocert_generated_client"
NPM_TOOLS = Path(os.environ.get("NOCERT_NPM_TOOLS", Path.home() / ".cache" / "nocert-tests" / "npm"))


def missing(reason: str) -> None:
    if REQUIRE_TOOLS:
        pytest.fail(f"NOCERT_REQUIRE_POSTGRES=1 (CI) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("spec")
    services = build(settings_for(f"sqlite:///{directory}/nocert.db", directory / "keys"))
    try:
        path = directory / "openapi.json"
        path.write_text(json.dumps(create_app(services, start_views=False).openapi(), ensure_ascii=False), "utf-8")
        return path
    finally:
        services.close()


# -- Python ----------------------------------------------------------------------------------------


class Generated:
    """The generated package: ``op("checks", "raise_check")`` is an operation's module, ``models`` its models."""

    def __init__(self, package: ModuleType, base_url: str = "") -> None:
        self.package = package
        self.models: Any = importlib.import_module(f"{PACKAGE}.models")
        self.base_url = base_url

    def op(self, tag: str, operation: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")

    def client(self, token: str) -> Any:
        # min_position waits up to 5 s before not_caught_up: more than httpx's default timeout
        return self.package.AuthenticatedClient(base_url=self.base_url, token=token, timeout=httpx.Timeout(30.0))


@pytest.fixture(scope="module")
def generated_package(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    tool = Path(sys.executable).with_name("openapi-python-client")
    if not tool.exists():
        missing("openapi-python-client is not installed (it is a test extra: pip install -e '.[test]')")
    directory = tmp_path_factory.mktemp("python-client")
    # The CRL (RFC 5280, application/pkix-crl) is a binary file: the generator's documented override says so,
    # as an integrator's config would (it knows application/octet-stream, not every binary media type).
    config = directory / "config.yaml"
    config.write_text("content_type_overrides:\n  application/pkix-crl: application/octet-stream\n")
    # the generator formats its output with ruff (a test extra too), found on PATH
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(tool), "generate", "--path", str(spec_file), "--output-path", str(directory / PACKAGE), "--meta", "none",
         "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    output = result.stdout + result.stderr
    print(f"openapi-python-client generate:\n{output}")  # shown with -rP / -s
    assert result.returncode == 0, output
    assert not any(word in output.lower() for word in ("warning", "skipping", "error")), output
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def live(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Province, str]]:
    """The standard province on a store, served by uvicorn on a free port (its views run)."""
    with running_app(module_database_url, tmp_path_factory.mktemp("keys")) as (services, app, client):
        province = Province.standard(client, services, app)
        with live_server(app) as url:
            yield province, url


@pytest.fixture
def gen(generated_package: ModuleType, live: tuple[Province, str]) -> Generated:
    return Generated(generated_package, live[1])


def check_create(m: Any, **overrides: Any) -> Any:
    """The standard check, as the generated models build it."""
    claims = m.CheckCreateClaims()
    claims["question"] = "两个身份证号码是否为同一人"
    claims["other_id_number"] = OTHER_NUMBER
    fields: dict[str, Any] = {
        "category": CATEGORY,
        "matter": m.Matter(code="real-estate-deregistration", name="不动产注销登记"),
        "applicant": m.Applicant(name="林某某", id_number=APPLICANT),
        "claims": claims,
        "purpose": "不动产注销登记身份一致性核验",
        "consent": m.Consent(method=m.ConsentMethod.FACE, reference="FACE-2024-0001"),
    }
    fields.update(overrides)
    return m.CheckCreate(**fields)


def test_the_generated_client_drives_a_check_from_raise_to_close(gen: Generated, live: tuple[Province, str]) -> None:
    province, _ = live
    m = gen.models
    approver, issuer = gen.client(province.approver.key), gen.client(province.gulou.key)
    key = f"client-{uuid.uuid4()}"
    raised = gen.op("checks", "raise_check").sync_detailed(client=approver, body=check_create(m), idempotency_key=key)
    check = raised.parsed
    assert raised.status_code == 201 and isinstance(check, m.Check), raised.content
    assert check.status == m.CheckStatus.RAISED and check.issuer == province.gulou.id
    assert isinstance(check.id, uuid.UUID) and check.raised_at.utcoffset().total_seconds() == 0
    assert check.applicant.id_number == APPLICANT and check.matter.name == "不动产注销登记"
    assert check.consent.method == m.ConsentMethod.FACE and check.proof is None
    # the same key and body: the first answer again, nothing raised twice
    again = gen.op("checks", "raise_check").sync(client=approver, body=check_create(m), idempotency_key=key)
    assert again.id == check.id

    accepted = gen.op("checks", "accept_check").sync(check.id, client=issuer, body=m.Empty())
    assert accepted.status == m.CheckStatus.ACCEPTED
    statements = m.ReplyStatements()
    statements["same_person"] = True
    replied = gen.op("checks", "reply_check").sync(
        check.id, client=issuer, body=m.Reply(conclusion=m.Conclusion.CONFIRMED, statements=statements, valid_days=30)
    )
    assert replied.status == m.CheckStatus.REPLIED and replied.proof.conclusion == m.Conclusion.CONFIRMED
    verdict = gen.op("proofs", "verify_proof").sync(client=approver, body=m.VerifyRequest(jws=replied.proof.jws))
    assert verdict.valid is True and verdict.reasons == []
    closed = gen.op("checks", "close_check").sync(check.id, client=approver, body=m.Close(outcome=m.Outcome.EXEMPTED))
    assert closed.status == m.CheckStatus.CLOSED and closed.outcome == m.Outcome.EXEMPTED
    assert closed.closed_at >= closed.replied_at >= closed.raised_at

    history = gen.op("checks", "get_check_history").sync(check.id, client=approver)
    assert [event.type_ for event in history.events] == ["Raised", "Accepted", "Replied", "Closed"]
    proof = gen.op("proofs", "get_proof").sync(replied.proof.id, client=approver)
    assert proof.status == m.ProofStatus.VALID and proof.check_id == check.id
    # read-your-writes over the views, with the position the command answered
    listed = gen.op("checks", "list_checks").sync(
        client=approver, status=m.CheckStatus.CLOSED, min_position=province.position()
    )
    assert check.id in {item.id for item in listed.items}
    coverage = gen.op("coverage", "get_coverage").sync(client=approver, category=CATEGORY)
    assert coverage.totals.closed_exempted >= 1
    root = gen.op("trust", "get_trust_root").sync(client=gen.package.Client(base_url=gen.base_url))
    assert root.startswith("-----BEGIN CERTIFICATE-----")


def test_the_generated_client_meets_the_error_cases(gen: Generated, live: tuple[Province, str], spec_file: Path) -> None:
    """Every §9 case a conforming client can cause on its own, each answered as the generated ``Problem``.
    The others follow: ``malformed_json`` and ``unsupported_media_type`` (a body changed on the way),
    ``concurrent_update`` and ``idempotency_in_progress`` (two requests at once), ``unavailable`` (a store
    that does not answer)."""
    province, _ = live
    m = gen.models
    admin, approver = gen.client(ADMIN_KEY), gen.client(province.approver.key)
    issuer, city = gen.client(province.gulou.key), gen.client(province.city.key)
    raise_check = gen.op("checks", "raise_check")

    documented = {
        operation["operationId"]: operation["responses"]
        for item in json.loads(spec_file.read_text("utf-8"))["paths"].values()
        for operation in item.values()
    }

    def problem(response: Any, status: int, code: str, operation: str = "raise_check") -> Any:
        assert response.status_code == status, (code, response.status_code, response.content)
        assert isinstance(response.parsed, m.Problem) and response.parsed.code == code, response.content
        # and the description names that code under that status for that operation
        assert code in documented[operation][str(status)]["x-problem-codes"], (operation, status, code)
        return response.parsed

    def raising(**overrides: Any) -> Any:
        return raise_check.sync_detailed(client=approver, body=check_create(m, **overrides))

    check = raise_check.sync(client=approver, body=check_create(m))
    problem(gen.op("checks", "list_checks").sync_detailed(client=gen.client("nck_nobody_0_x")), 401, "unauthenticated", "list_checks")
    problem(gen.op("checks", "accept_check").sync_detailed(check.id, client=approver, body=m.Empty()), 403, "forbidden", "accept_check")
    problem(gen.op("checks", "get_check").sync_detailed(uuid.uuid4(), client=approver), 404, "not_found", "get_check")
    gen.op("checks", "accept_check").sync(check.id, client=issuer, body=m.Empty())
    problem(gen.op("checks", "accept_check").sync_detailed(check.id, client=issuer, body=m.Empty()), 409, "invalid_transition", "accept_check")
    bad_reply = m.Reply(conclusion=m.Conclusion.CONFIRMED, statements=m.ReplyStatements(), valid_days=0)
    problem(gen.op("checks", "reply_check").sync_detailed(check.id, client=issuer, body=bad_reply), 422, "validation_error", "reply_check")
    problem(raising(purpose="长" * 70_000), 413, "payload_too_large")
    problem(
        gen.op("checks", "list_checks").sync_detailed(client=approver, min_position=province.position() + 10**9),
        503, "not_caught_up", "list_checks",
    )

    # identifiers, categories and routing
    wrong_check_digit = APPLICANT[:-1] + ("0" if APPLICANT[-1] != "0" else "1")
    problem(raising(applicant=m.Applicant(name="林某某", id_number=wrong_check_digit)), 422, "invalid_id_number")
    problem(raising(category="no-such-category"), 422, "unknown_category")
    problem(raising(applicant=m.Applicant(name="陈某某", id_number=APPLICANT_XIAMEN)), 422, "no_route")
    problem(raising(issuer=province.civil.id), 422, "invalid_issuer")
    key = f"mismatch-{uuid.uuid4()}"
    raise_check.sync(client=approver, body=check_create(m), idempotency_key=key)
    problem(raise_check.sync_detailed(client=approver, body=check_create(m, purpose="另一用途"), idempotency_key=key),
            422, "idempotency_mismatch")

    claims_schema = m.CategoryCreateClaimsSchemaType0()
    claims_schema["type"] = "object"
    claims_schema["required"] = ["reference_number"]
    code = f"strict-{uuid.uuid4().hex[:8]}"
    gen.op("categories", "create_category").sync(client=admin, body=m.CategoryCreate(
        code=code, name="带结构的证明", issuer_kind="police", modes=[m.Mode.COLLABORATION], sla_hours=24,
        claims_schema=claims_schema,
    ))
    problem(raising(category=code), 422, "invalid_claims")
    retired = gen.op("categories", "change_category").sync(code, client=admin, body=m.CategoryPatch(status=m.CategoryStatus.RETIRED))
    assert retired.status == m.CategoryStatus.RETIRED
    problem(raising(category=code), 422, "category_unavailable")

    # departments: duplicates, bad USCCs, a second station (ambiguous until deactivated; its key then 401)
    def department(**overrides: Any) -> Any:
        fields = {"id": f"gen-{uuid.uuid4().hex[:8]}", "name": "鼓楼区第二派出所", "uscc": new_uscc(),
                  "roles": [m.Role.ISSUER], "kind": "police", "region": "350102"}
        return m.DepartmentCreate(**{**fields, **overrides})

    create_department = gen.op("departments", "create_department")
    problem(create_department.sync_detailed(client=admin, body=department(id=province.gulou.id)), 409, "conflict", "create_department")
    problem(create_department.sync_detailed(client=admin, body=department(uscc="91350100M000100Y4Z")), 422, "invalid_uscc", "create_department")
    second = create_department.sync(client=admin, body=department())
    problem(raising(), 422, "ambiguous_route")
    change = gen.op("departments", "change_department")
    inactive = change.sync(second.id, client=admin, body=m.DepartmentPatch(status=m.DepartmentStatus.INACTIVE))
    assert inactive.status == m.DepartmentStatus.INACTIVE
    assert raise_check.sync(client=approver, body=check_create(m)).issuer == province.gulou.id
    problem(gen.op("checks", "get_inbox").sync_detailed(client=gen.client(second.api_key)), 401, "unauthenticated", "get_inbox")
    problem(change.sync_detailed("no-such-department", client=admin, body=m.DepartmentPatch(name="无")), 404, "not_found", "change_department")

    # a department whose current key is revoked cannot reply until its key is rotated
    routed_to_city = raise_check.sync(client=approver, body=check_create(m, issuer=province.city.id))
    gen.op("departments", "revoke_seal_key").sync(
        province.city.id, province.city.kid, client=admin, body=m.KeyRevocation(reason="私钥泄露")
    )
    reply = m.Reply(conclusion=m.Conclusion.CONFIRMED, statements=m.ReplyStatements(), valid_days=90)
    problem(gen.op("checks", "reply_check").sync_detailed(routed_to_city.id, client=city, body=reply), 409, "no_signing_key", "reply_check")
    gen.op("departments", "rotate_seal_key").sync(province.city.id, client=admin, body=m.Empty())
    replied = gen.op("checks", "reply_check").sync(routed_to_city.id, client=city, body=reply)
    assert replied.status == m.CheckStatus.REPLIED


# -- what a conforming client meets without causing it ------------------------------------------


def documented_codes(spec_file: Path) -> dict[str, dict[str, Any]]:
    """operationId → its declared responses."""
    return {
        operation["operationId"]: operation["responses"]
        for item in json.loads(spec_file.read_text("utf-8"))["paths"].values()
        for operation in item.values()
    }


def assert_problem(gen: Generated, spec_file: Path, response: Any, status: int, code: str, operation: str) -> Any:
    """The generated client parsed ``response`` as its ``Problem`` (so the operation declares the status with
    the Problem schema), with that code, which the operation's description lists under that status."""
    m = gen.models
    assert response.status_code == status, (code, response.status_code, response.content)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    assert isinstance(response.parsed, m.Problem), (operation, status, response.content)
    assert response.parsed.code == code and response.parsed.status == status, response.content
    assert code in documented_codes(spec_file)[operation][str(status)]["x-problem-codes"], (operation, status, code)
    return response.parsed


class Mangling(httpx.HTTPTransport):
    """A transport that changes the generated client's request on its way, as a broken proxy or a hand-edited
    request would: its body (``body``) or its media type (``content_type``)."""

    def __init__(self, *, body: bytes | None = None, content_type: str | None = None) -> None:
        super().__init__()
        self.body, self.content_type = body, content_type
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        if self.content_type is not None:
            headers["content-type"] = self.content_type
        content = self.body if self.body is not None else request.read()
        changed = httpx.Request(request.method, request.url, headers=headers, content=content)
        self.sent.append(changed)
        return super().handle_request(changed)


def test_the_generated_client_meets_a_body_changed_on_the_way(
    gen: Generated, live: tuple[Province, str], spec_file: Path
) -> None:
    province, _ = live
    m = gen.models
    raise_check, change_department = gen.op("checks", "raise_check"), gen.op("departments", "change_department")

    def client(token: str, transport: Mangling) -> Any:
        return gen.package.AuthenticatedClient(
            base_url=gen.base_url, token=token, timeout=httpx.Timeout(30.0), httpx_args={"transport": transport}
        )

    def gulou_name() -> list[str]:
        listed = gen.op("departments", "list_departments").sync(client=gen.client(ADMIN_KEY))
        return [item.name for item in listed.items if item.id == province.gulou.id]

    before = gulou_name()
    assert before and before != ["鼓楼"]
    truncated = Mangling(body=b'{"category": "' + CATEGORY.encode() + b'", "matter": {')
    answer = raise_check.sync_detailed(client=client(province.approver.key, truncated), body=check_create(m))
    assert_problem(gen, spec_file, answer, 400, "malformed_json", "raise_check")
    not_utf8 = Mangling(body=b'{"name": "\xff\xfe"}')
    answer = change_department.sync_detailed(
        province.gulou.id, client=client(ADMIN_KEY, not_utf8), body=m.DepartmentPatch(name="鼓楼")
    )
    assert_problem(gen, spec_file, answer, 400, "malformed_json", "change_department")
    as_form = Mangling(content_type="application/x-www-form-urlencoded")
    answer = raise_check.sync_detailed(client=client(province.approver.key, as_form), body=check_create(m))
    assert_problem(gen, spec_file, answer, 415, "unsupported_media_type", "raise_check")
    as_text = Mangling(content_type="text/plain")
    answer = change_department.sync_detailed(
        province.gulou.id, client=client(ADMIN_KEY, as_text), body=m.DepartmentPatch(name="鼓楼")
    )
    assert_problem(gen, spec_file, answer, 415, "unsupported_media_type", "change_department")
    for transport in (truncated, not_utf8, as_form, as_text):
        assert len(transport.sent) == 1  # each request went out once, as changed
    # nothing of the refused requests was recorded: the department keeps its name
    assert gulou_name() == before


def test_the_generated_client_meets_a_key_in_progress(
    gen: Generated, live: tuple[Province, str], spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first request with a key is held inside its command; a second with the same key and body, sent
    meanwhile, is 409 ``idempotency_in_progress``; once the first is answered, a repeat is its answer."""
    province, _ = live
    m = gen.models
    issuer = gen.client(province.gulou.key)
    accept = gen.op("checks", "accept_check")
    check = gen.op("checks", "raise_check").sync(client=gen.client(province.approver.key), body=check_create(m))
    platform = province.services.platform
    entered, release = threading.Event(), threading.Event()
    original = platform.accept

    def held_accept(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30), "the held accept was never released"
        return original(*args, **kwargs)

    monkeypatch.setattr(platform, "accept", held_accept)
    key = f"in-progress-{uuid.uuid4()}"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(accept.sync_detailed, check.id, client=issuer, body=m.Empty(), idempotency_key=key)
        try:
            assert entered.wait(30), "the first request did not reach its command"
            meanwhile = accept.sync_detailed(check.id, client=issuer, body=m.Empty(), idempotency_key=key)
        finally:
            release.set()
        answered = first.result(timeout=60)
    assert_problem(gen, spec_file, meanwhile, 409, "idempotency_in_progress", "accept_check")
    assert answered.status_code == 200 and isinstance(answered.parsed, m.Check), answered.content
    assert answered.parsed.status == m.CheckStatus.ACCEPTED
    monkeypatch.undo()
    again = accept.sync_detailed(check.id, client=issuer, body=m.Empty(), idempotency_key=key)
    assert again.status_code == 200 and again.parsed.version == answered.parsed.version, again.content
    history = gen.op("checks", "get_check_history").sync(check.id, client=issuer)
    assert [event.type_ for event in history.events] == ["Raised", "Accepted"]


def test_the_generated_client_meets_a_concurrent_update(
    gen: Generated, live: tuple[Province, str], spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rival commands (accept, decline) on one check, sent at once, both read the check before either
    saves (each request's read is held until the other's has read too, as on a node that had not cached
    the check): one wins, the other is 409 ``concurrent_update``."""
    province, _ = live
    m = gen.models
    issuer = gen.client(province.gulou.key)
    check = gen.op("checks", "raise_check").sync(client=gen.client(province.approver.key), body=check_create(m))
    platform = province.services.platform
    both_read = threading.Barrier(2, timeout=30)
    reads: list[uuid.UUID] = []
    lock = threading.Lock()
    original = platform.check

    def holding_read(check_id: uuid.UUID, version: int | None = None) -> Any:
        found = original(check_id, version)
        with lock:
            held = check_id == check.id and len(reads) < 2
            if held:
                reads.append(check_id)
        if held:
            both_read.wait()
        return found

    monkeypatch.setattr(platform, "cached_check", lambda check_id: None)
    monkeypatch.setattr(platform, "check", holding_read)
    commands = {
        "accept_check": lambda: gen.op("checks", "accept_check").sync_detailed(check.id, client=issuer, body=m.Empty()),
        "decline_check": lambda: gen.op("checks", "decline_check").sync_detailed(
            check.id, client=issuer, body=m.Decline(reason_code=m.DeclineReason.NO_RECORD)
        ),
    }
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(command) for name, command in commands.items()}
        answers = {name: future.result(timeout=60) for name, future in futures.items()}
    monkeypatch.undo()
    assert len(reads) == 2, "the two commands did not both read the check"
    won = [name for name, answer in answers.items() if answer.status_code == 200]
    assert len(won) == 1, {name: (answer.status_code, answer.content) for name, answer in answers.items()}
    (lost,) = set(answers) - set(won)
    assert_problem(gen, spec_file, answers[lost], 409, "concurrent_update", lost)
    history = gen.op("checks", "get_check_history").sync(check.id, client=issuer)
    assert [event.type_ for event in history.events] == ["Raised", "Accepted" if won == ["accept_check"] else "Declined"]


@contextlib.contextmanager
def sqlite_write_locked(database_path: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock: the service's writes wait out their busy timeout."""
    holder = sqlite3.connect(database_path, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_generated_client_meets_an_unavailable_store(
    generated_package: ModuleType, module_database_url: str, spec_file: Path, tmp_path: Path
) -> None:
    """PostgreSQL: a server on a throw-away cluster (tests/reliability/cluster.py), which is stopped: every
    operation that needs the store, a public one too, is 503 ``unavailable``, parsed as the generated
    ``Problem``; the public answers made from keys alone go on. SQLite: the database's write lock held by
    another connection beyond the busy timeout: a command is 503 ``unavailable``. Both recover."""
    if module_database_url.startswith("sqlite"):
        database = tmp_path / "nocert.db"
        with running_app(f"sqlite:///{database}", tmp_path / "keys") as (services, app, client):
            province = Province.standard(client, services, app)
            with live_server(app) as url:
                gen = Generated(generated_package, url)
                m = gen.models
                approver = gen.client(province.approver.key)
                raise_check = gen.op("checks", "raise_check")
                with sqlite_write_locked(database):
                    answer = raise_check.sync_detailed(client=approver, body=check_create(m))
                assert_problem(gen, spec_file, answer, 503, "unavailable", "raise_check")
                assert answer.headers["retry-after"].isdigit()
                assert raise_check.sync_detailed(client=approver, body=check_create(m)).status_code == 201
        return

    from tests.reliability.cluster import pg_bin, shared_server_ready, throwaway_cluster

    if pg_bin() is None:
        missing("PostgreSQL's server programs (initdb, pg_ctl) are needed for a throw-away cluster")
    with throwaway_cluster() as cluster, running_app(cluster.url, tmp_path / "keys") as (services, app, client):
        province = Province.standard(client, services, app)
        with live_server(app) as url:
            gen = Generated(generated_package, url)
            m = gen.models
            approver, issuer = gen.client(province.approver.key), gen.client(province.gulou.key)
            anonymous = gen.package.Client(base_url=url, timeout=httpx.Timeout(30.0))
            check = gen.op("checks", "raise_check").sync(client=approver, body=check_create(m))
            province.settle()
            cluster.stop()
            try:
                assert shared_server_ready(), "the shared PostgreSQL stopped with the test's own"
                down = {
                    "get_check": lambda: gen.op("checks", "get_check").sync_detailed(check.id, client=approver),
                    "raise_check": lambda: gen.op("checks", "raise_check").sync_detailed(
                        client=approver, body=check_create(m), idempotency_key=f"down-{uuid.uuid4()}"
                    ),
                    "accept_check": lambda: gen.op("checks", "accept_check").sync_detailed(
                        check.id, client=issuer, body=m.Empty()
                    ),
                    "get_trust_crl": lambda: gen.op("trust", "get_trust_crl").sync_detailed(client=anonymous),
                    "get_log_checkpoint": lambda: gen.op("transparency_log", "get_log_checkpoint").sync_detailed(
                        client=anonymous
                    ),
                }
                for operation, call in down.items():
                    started = time.monotonic()
                    answer = call()
                    assert time.monotonic() - started < 15, f"{operation} took {time.monotonic() - started:.1f} s"
                    assert_problem(gen, spec_file, answer, 503, "unavailable", operation)
                keys_only = {
                    "get_trust_root": gen.op("trust", "get_trust_root").sync_detailed(client=anonymous),
                    "get_webhook_key": gen.op("subscriptions", "get_webhook_key").sync_detailed(client=anonymous),
                    "get_log_vkey": gen.op("transparency_log", "get_log_vkey").sync_detailed(client=anonymous),
                }
            finally:
                cluster.start()
            # the public operations made from keys alone answer, and declare no 503
            documented = documented_codes(spec_file)
            for operation, answer in keys_only.items():
                assert answer.status_code == 200, (operation, answer.status_code, answer.content)
                assert "503" not in documented[operation], operation
            deadline = time.monotonic() + 60
            while (answer := gen.op("checks", "get_check").sync_detailed(check.id, client=approver)).status_code != 200:
                assert time.monotonic() < deadline, answer.content
                time.sleep(0.5)
            accepted = gen.op("checks", "accept_check").sync(check.id, client=issuer, body=m.Empty())
            assert accepted.status == m.CheckStatus.ACCEPTED


# -- TypeScript ------------------------------------------------------------------------------------


def _npm_tools() -> tuple[Path, Path]:
    """openapi-typescript and tsc, installed by npm into NPM_TOOLS once."""
    bin_dir = NPM_TOOLS / "node_modules" / ".bin"
    generator, tsc = bin_dir / "openapi-typescript", bin_dir / "tsc"
    if generator.exists() and tsc.exists():
        return generator, tsc
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("node and npm are needed for the TypeScript client")
    assert npm is not None
    NPM_TOOLS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_TOOLS), "openapi-typescript@^7", "typescript@^5"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.skip(f"npm could not install openapi-typescript and typescript (registry unreachable?): {' / '.join(tail)}")
    return generator, tsc


CLIENT_TS = """\
import type { components, operations, paths } from "./nocert-api.js";

type Schemas = components["schemas"];
type Check = Schemas["Check"];
type Problem = Schemas["Problem"];
type RaiseBody = paths["/v1/checks"]["post"]["requestBody"]["content"]["application/json"];
type Raised = operations["raise_check"]["responses"][201]["content"]["application/json"];
type RaiseHeaders = NonNullable<operations["raise_check"]["parameters"]["header"]>;

EXAMPLES

export async function raiseCheck(base: string, apiKey: string, body: RaiseBody, key: string): Promise<Raised | Problem> {
  const idempotency: RaiseHeaders = { "Idempotency-Key": key };
  const response = await fetch(`${base}/v1/checks`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json", ...idempotency },
    body: JSON.stringify(body),
  });
  const position: string | null = response.headers.get("X-Event-Position");
  void position;
  return (await response.json()) as Raised | Problem;
}

export function describe(check: Check): string {
  const status: Check["status"] = check.status;
  const proof = check.proof ? `${check.proof.conclusion} ${check.proof.id}` : "no proof";
  const applicant: string | null = check.applicant.id_number;
  const questions: number = check.info_requests.filter((item) => item.answered_at === null).length;
  return `${check.id} ${status} ${check.matter.name} ${check.consent.method} ${applicant} ${proof} ${questions}`;
}

export const raised: Promise<Raised | Problem> = raiseCheck("http://127.0.0.1:8000", "key", example_CheckCreate, "k-1");

// The answers a client meets without causing them are declared, as the Problem schema, where they can come:
// an undeclared status does not compile (not a key of the responses), another schema is not `true`.
type ProblemOf<Op extends keyof operations, S extends keyof operations[Op]["responses"]> =
  operations[Op]["responses"][S] extends { content: { "application/problem+json": infer P } } ? P : never;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const declared: [
  Same<ProblemOf<"raise_check", 400>, Problem>,  // malformed_json
  Same<ProblemOf<"change_department", 400>, Problem>,
  Same<ProblemOf<"raise_check", 415>, Problem>,  // unsupported_media_type
  Same<ProblemOf<"change_department", 415>, Problem>,
  Same<ProblemOf<"accept_check", 409>, Problem>,  // idempotency_in_progress, concurrent_update
  Same<ProblemOf<"decline_check", 409>, Problem>,
  Same<ProblemOf<"raise_check", 503>, Problem>,  // unavailable
  Same<ProblemOf<"get_check", 503>, Problem>,
  Same<ProblemOf<"get_trust_crl", 503>, Problem>,
  Same<ProblemOf<"get_log_checkpoint", 503>, Problem>,
] = [true, true, true, true, true, true, true, true, true, true];
"""


def test_the_typescript_client_compiles_under_nodenext(spec_file: Path, tmp_path: Path) -> None:
    generator, tsc = _npm_tools()
    types = tmp_path / "nocert-api.d.ts"
    result = subprocess.run(
        [str(generator), str(spec_file), "--output", str(types)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr
    examples = "\n".join(
        f"export const example_{name}: Schemas[{json.dumps(name)}] = {json.dumps(body, ensure_ascii=False)};"
        for name, body in EXAMPLES.items()
    )
    (tmp_path / "client.ts").write_text(CLIENT_TS.replace("EXAMPLES", examples), "utf-8")
    (tmp_path / "package.json").write_text('{"type": "module", "private": true}', "utf-8")
    compiled = subprocess.run(
        [str(tsc), "--module", "NodeNext", "--moduleResolution", "NodeNext", "--strict", "--noEmit", "--target", "es2022",
         "--lib", "es2022,dom", "client.ts"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
