"""Fixtures of the HTTP API tests: a small province built through the API, on both durable stores.

``Province`` drives the service only through HTTP (a ``TestClient`` whose lifespan runs the view
follower) and keeps every department's keys:

- ``approver``: 福州市不动产登记中心, role approver, region 350102;
- ``gulou``: 福州市公安局鼓楼分局, police issuer at 350102 (routing prefix ``350102``);
- ``city``: 福州市公安局, police issuer at 350100 (routing prefix ``3501``);
- ``civil``: 福州市民政局, an issuer of another kind (``civil-affairs``) at 350100;
- ``auditor``: 福建省审计厅, role auditor;
- ``stranger``: 厦门市不动产登记中心, an approver unrelated to the province's checks;

and the category ``household-registration`` (police, collaboration + commitment, SLA 24 h).

``province`` is function-scoped on ``durable_database_url`` (a fresh store per test and store);
``shared_province`` is one province per test module and store, for tests that do not interfere.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Services, build
from api.settings import Settings
from domain.identifiers import make_id_number, make_uscc
from tests.bodies import CATEGORY, check_body
from tests.conftest import postgres_schema_url

ADMIN_KEY = "admin-" + "x" * 40

# Applicants: the first six digits are the region of household registration, which routes the check.
APPLICANT_CITY = make_id_number("35010419880202456")  # 台江区 350104: routes to city (prefix 3501)
APPLICANT_XIAMEN = make_id_number("35020319700303789")  # 厦门 350203: no police issuer covers it

_USCC_SERIAL = itertools.count(1)


def new_uscc() -> str:
    """A valid, unique unified social credit code."""
    return make_uscc(f"11350100MB{next(_USCC_SERIAL):07d}")


def masked(number: str) -> str:
    return number[:6] + "********" + number[-4:]


@dataclass
class Member:
    """A department created through the API, with the key shown once at its creation."""

    id: str
    key: str
    key_id: str
    document: dict[str, Any]

    @property
    def kid(self) -> str | None:
        signing = self.document.get("signing")
        return signing["kid"] if signing else None


@dataclass
class Caller:
    """HTTP calls as one principal (``key`` None: no Authorization header)."""

    client: Any
    key: str | None
    name: str

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key is not None else {}
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        expect: int | None = None,
    ) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": self.headers(headers), "params": params}
        if content is not None:
            kwargs["content"] = content
        elif json is not None:
            kwargs["json"] = json
        response = self.client.request(method, path, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (
                f"{method} {path} as {self.name}: expected {expect}, got {response.status_code}: {response.text[:2000]}"
            )
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


_ADDRESSES = itertools.count(1)


def roaming_client(app: FastAPI) -> TestClient:
    """A client calling from an address of its own (198.18.0.0/15, for benchmarks), so that failed
    authentications of one test do not count towards the gateway's per-address limit of another."""
    n = next(_ADDRESSES)
    return TestClient(app, client=(f"198.{18 + n // 62500 % 2}.{n // 250 % 250}.{n % 250 + 1}", 50000))


@dataclass
class RoamingCaller(Caller):
    """A caller whose every request comes from a new client address (see ``roaming_client``)."""

    app: Any = None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.client = roaming_client(self.app)
        return super().request(method, path, **kwargs)


@dataclass
class Province:
    """A province built through the HTTP API; see the module's docstring."""

    client: Any
    services: Services
    members: dict[str, Member] = field(default_factory=dict)
    app: Any = None  # the FastAPI application (for a second client or a live server)

    @property
    def admin(self) -> Caller:
        return Caller(self.client, ADMIN_KEY, "admin")

    @property
    def anonymous(self) -> Caller:
        return Caller(self.client, None, "anonymous")

    def roaming(self, key: str | None, name: str = "roaming") -> Caller:
        """A caller with ``key`` whose requests come from ever new client addresses."""
        return RoamingCaller(None, key, name, app=self.app)

    def as_(self, who: str | Member) -> Caller:
        """The caller ``who``: ``admin``, ``anonymous``, a member's name, or a member."""
        if isinstance(who, Member):
            return Caller(self.client, who.key, who.id)
        if who == "admin":
            return self.admin
        if who == "anonymous":
            return self.anonymous
        member = self.members[who]
        return Caller(self.client, member.key, who)

    def __getattr__(self, name: str) -> Member:
        members = self.__dict__.get("members", {})
        if name in members:
            return members[name]
        raise AttributeError(name)

    # -- building -------------------------------------------------------------------------------

    def department(
        self,
        name: str,
        *,
        roles: list[str],
        kind: str,
        region: str,
        id: str | None = None,
        display: str | None = None,
    ) -> Member:
        """Creates a department through the API and remembers it under ``name``."""
        department_id = id or f"{name}-{uuid.uuid4().hex[:6]}"
        body = {
            "id": department_id,
            "name": display or f"部门 {name}",
            "uscc": new_uscc(),
            "roles": roles,
            "kind": kind,
            "region": region,
        }
        document = self.admin.post("/v1/departments", json=body, expect=201).json()
        member = Member(department_id, document["api_key"], document["api_key_id"], document)
        self.members[name] = member
        return member

    def category(
        self,
        code: str,
        *,
        issuer_kind: str = "police",
        modes: list[str] | None = None,
        sla_hours: float = 24,
        name: str | None = None,
        claims_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": code,
            "name": name or f"证明 {code}",
            "issuer_kind": issuer_kind,
            "modes": modes or ["collaboration", "commitment"],
            "sla_hours": sla_hours,
        }
        if claims_schema is not None:
            body["claims_schema"] = claims_schema
        return self.admin.post("/v1/categories", json=body, expect=201).json()

    @classmethod
    def standard(cls, client: Any, services: Services, app: Any = None) -> Province:
        province = cls(client, services, app=app)
        province.department(
            "approver", id="fz-estate", display="福州市不动产登记中心", roles=["approver"], kind="real-estate", region="350102"
        )
        province.department(
            "gulou", id="fz-gulou-police", display="福州市公安局鼓楼分局", roles=["issuer"], kind="police", region="350102"
        )
        province.department(
            "city", id="fz-police", display="福州市公安局", roles=["issuer"], kind="police", region="350100"
        )
        province.department(
            "civil", id="fz-civil-affairs", display="福州市民政局", roles=["issuer"], kind="civil-affairs", region="350100"
        )
        province.department(
            "auditor", id="fj-audit", display="福建省审计厅", roles=["auditor"], kind="audit", region="350000"
        )
        province.department(
            "stranger", id="xm-estate", display="厦门市不动产登记中心", roles=["approver"], kind="real-estate", region="350200"
        )
        province.category(CATEGORY, name="户籍证明", issuer_kind="police", modes=["collaboration", "commitment"], sla_hours=24)
        return province

    # -- checks ---------------------------------------------------------------------------------

    check_body = staticmethod(check_body)

    def raise_check(self, by: str | Member = "approver", **overrides: Any) -> dict[str, Any]:
        return self.as_(by).post("/v1/checks", json=self.check_body(**overrides), expect=201).json()

    def act(
        self, check_id: str, action: str, by: str | Member, body: dict[str, Any] | None = None, expect: int = 200
    ) -> dict[str, Any]:
        """A command on a check, e.g. ``act(id, "accept", "gulou")``."""
        defaults = {
            "accept": {},
            "request-info": {"question": "请补充户籍地址"},
            "supply-info": {"answer": "福州市鼓楼区某路1号"},
            "forward": {"to": "fz-police", "reason": "辖区调整"},
            "reply": {"conclusion": "confirmed", "statements": {"same_person": True}},
            "decline": {"reason_code": "no_record", "note": "查无此人"},
            "withdraw": {"reason": "申请人撤回"},
            "close": {"outcome": "applicant_submitted"},
        }
        payload = defaults[action] if body is None else body
        return self.as_(by).post(f"/v1/checks/{check_id}/{action}", json=payload, expect=expect).json()

    def replied_check(self, **overrides: Any) -> dict[str, Any]:
        """A check raised by the approver and answered ``confirmed`` by gulou."""
        check = self.raise_check(**overrides)
        return self.act(check["id"], "reply", "gulou")

    # -- positions ------------------------------------------------------------------------------

    def position(self) -> int:
        return self.services.log.max_position()

    def settle(self, timeout: float = 15.0) -> int:
        """Waits until the views reflect every event recorded so far; returns that position."""
        position = self.position()
        assert self.services.views.wait_for(position, timeout), f"views did not reach {position}"
        return position


# -- building services ---------------------------------------------------------------------------


def settings_for(url: str, key_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=url, key_dir=key_dir, admin_key="admin-" + "x" * 40, checkpoint_every=5, **overrides
    )


def build_services(url: str, key_dir: Path) -> Services:
    return build(settings_for(url, key_dir))


@contextlib.contextmanager
def running_app(url: str, key_dir: Path) -> Iterator[tuple[Services, FastAPI, TestClient]]:
    """Services on a store, their app and a TestClient whose lifespan runs the views."""
    services = build_services(url, key_dir)
    try:
        app = create_app(services)
        with TestClient(app) as client:
            yield services, app, client
    finally:
        services.close()


@contextlib.contextmanager
def open_province(url: str, key_dir: Path) -> Iterator[Province]:
    with running_app(url, key_dir) as (services, app, client):
        yield Province.standard(client, services, app)


@pytest.fixture
def province(durable_database_url: str, tmp_path: Path) -> Iterator[Province]:
    """A fresh province per test, on each durable store."""
    with open_province(durable_database_url, tmp_path / "keys") as built:
        yield built


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``durable_database_url``, once per test module and store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store')}/nocert.db"
        return
    request.getfixturevalue("postgres_available")
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(scope="module")
def shared_province(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Province]:
    """One province per test module and store."""
    with open_province(module_database_url, tmp_path_factory.mktemp("keys")) as built:
        yield built


@pytest.fixture(scope="module")
def sqlite_province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Province]:
    """One province per test module, on SQLite only."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store')}/nocert.db"
    with open_province(url, tmp_path_factory.mktemp("keys")) as built:
        yield built


# -- a real server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serves ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
