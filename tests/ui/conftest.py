"""The browser tests' harness: a real ``nocert serve`` on SQLite and on PostgreSQL, Debian's Chromium
driven by Playwright, and the checks every page gets.

- ``ui_server`` (one per store and session): the console script on a free 127.0.0.1 port
  (tests/reliability/support.py), with `UiServer.database` open on its store for what a test arranges
  there (officers' accounts, a session's age).
- ``page``: a fresh browser context (no cookies) whose every request is logged; a request to any other
  origin is aborted, and at the end of the test any such request, any Content-Security-Policy violation
  and any uncaught script error fails it.
- ``axe``: runs the vendored axe-core in the page and fails on violations of serious or critical impact.

Chromium is /usr/bin/chromium (``NOCERT_CHROMIUM`` to change it). Without it the tests skip, saying so;
with ``NOCERT_REQUIRE_BROWSER=1`` (as in .ci/run) they fail instead. Tests wait on locators and
conditions (Playwright's auto-waiting, with the default timeout below), never by sleeping.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.bootstrap import _open_database
from api.settings import Settings, parse_database_url
from api.workbench.accounts import Accounts
from api.workbench.credentials import Passwords
from api.workbench.sessions import Officer
from domain.identifiers import make_uscc
from store.database import Database
from tests.conftest import postgres_schema_url
from tests.reliability.support import ADMIN_KEY, Server, server_env
from tests.reliability.support import Province as HttpProvince

CHROMIUM = os.environ.get("NOCERT_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("NOCERT_REQUIRE_BROWSER") == "1"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The department whose officers are the platform operator in the workbench (tests/ui/test_roles.py makes it).
OPERATOR_DEPARTMENT = "fj-data-bureau"
#: How long a locator or navigation may wait for its condition before the test fails.
TIMEOUT_MS = 20_000
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
SERIOUS = ("serious", "critical")

_VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__nocertViolation({directive: event.effectiveDirective, blocked: event.blockedURI,
                            source: event.sourceFile, line: event.lineNumber, sample: event.sample});
});
"""


def open_database(url: str) -> Database:
    """The store's database as the server opens it (few connections: the server holds its own)."""
    return _open_database(parse_database_url(url), Settings(database_url=url, db_pool_size=2))


@dataclass
class UiServer:
    """A running ``nocert serve`` and its store."""

    kind: str
    server: Server
    database: Database

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def officer(self, password: str = "correct horse battery", *, department: str = "fz-gulou-police") -> Officer:
        """A new officer (a login of its own) with an enrolled account, as the lead's officer events
        will create one; until then straight into the account table."""
        officer = Officer(department, f"officer-{uuid.uuid4().hex[:8]}")
        accounts = Accounts(self.database, Passwords())
        accounts.enrol(officer, accounts.create(officer), password)
        return officer

    def enrolment(self, *, department: str = "fz-gulou-police") -> tuple[Officer, str]:
        """A new officer awaiting enrolment, and its enrolment code."""
        officer = Officer(department, f"officer-{uuid.uuid4().hex[:8]}")
        return officer, Accounts(self.database, Passwords()).create(officer)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"NOCERT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def ui_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """``nocert serve`` on each durable store, once per test session."""
    workdir = tmp_path_factory.mktemp(f"ui-{request.param}")
    with contextlib.ExitStack() as cleanup:  # undone in reverse: database, server, then the schema
        if request.param == "sqlite":
            url = f"sqlite:///{workdir}/nocert.db"
        else:
            request.getfixturevalue("postgres_available")
            url = cleanup.enter_context(postgres_schema_url())
        server = Server(workdir, server_env(url, workdir / "keys", NOCERT_UI_OPERATOR_DEPARTMENT=OPERATOR_DEPARTMENT))
        cleanup.callback(server.stop)
        server.start()
        database = open_database(url)
        cleanup.callback(database.close)
        yield UiServer(request.param, server, database)


@dataclass
class RequestLog:
    """What a browser context asked for, and what it must not have done."""

    origin: str
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    #: URLs of other origins a test expects the page's policy to block (a library that tries, and fails).
    expected_blocks: set[str] = field(default_factory=set)

    def route(self, route: Any) -> None:
        """Lets requests to the server's origin through; aborts (and records) any other."""
        target = route.request.url
        self.requests.append(target)
        parts = urlsplit(target)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.foreign.append(target)
            route.abort("blockedbyclient")

    def problems(self) -> list[str]:
        return (
            [f"request to another origin: {url}" for url in self.foreign]
            + [
                f"Content-Security-Policy violation: {violation}"
                for violation in self.violations
                if violation["blocked"] not in self.expected_blocks
            ]
            + [f"uncaught script error: {error}" for error in self.page_errors]
        )


@pytest.fixture
def request_log(ui_server: UiServer) -> RequestLog:
    return RequestLog(ui_server.base_url)


@pytest.fixture
def page(browser: Any, ui_server: UiServer, request_log: RequestLog) -> Iterator[Any]:
    """A page in a fresh context on the server; fails the test on a foreign request, a CSP violation or a
    script error."""
    context = browser.new_context(base_url=ui_server.base_url, locale="zh-CN", service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", request_log.route)
    context.expose_binding("__nocertViolation", lambda source, violation: request_log.violations.append(violation))
    context.add_init_script(_VIOLATION_LISTENER)
    page = context.new_page()
    page.on("pageerror", lambda error: request_log.page_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    problems = request_log.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def axe(axe_source: str) -> Callable[[Any], list[dict[str, Any]]]:
    """``axe(page)``: runs axe-core on the page as it is; fails on serious or critical violations and
    returns all of axe's results (the passes included, for tests that look at what was checked)."""

    def check(page: Any) -> list[dict[str, Any]]:
        page.evaluate(axe_source)  # through the DevTools protocol: the page's CSP does not apply to it
        results = page.evaluate("() => axe.run(document, {resultTypes: ['violations', 'passes']})")
        serious = [v for v in results["violations"] if v["impact"] in SERIOUS]
        details = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']]}" for v in serious
        ]
        assert not serious, "accessibility violations:\n" + "\n".join(details)
        return results["passes"]

    return check


PASSWORD = "correct horse battery"


@dataclass
class Desk:
    """The departments of the province (made through the admin API) and how to make their officers."""

    server: UiServer
    ids: dict[str, str]

    def officer(self, name: str) -> Officer:
        """A new officer of department ``name``, added by the admin and enrolled with its code."""
        department = self.ids[name]
        login = f"o.{uuid.uuid4().hex[:8]}"
        with httpx.Client(base_url=self.server.base_url, timeout=30) as client:
            response = client.post(
                f"/v1/departments/{department}/officers", json={"login": login, "name": "测试人员"},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
        assert response.status_code == 201, response.text
        officer = Officer(department, login)
        Accounts(self.server.database, Passwords()).enrol(officer, response.json()["enrolment_code"], PASSWORD)
        return officer


@pytest.fixture(scope="session")
def desk(ui_server: UiServer) -> Desk:
    return province_desk(ui_server)


def province_desk(ui_server: UiServer) -> Desk:
    """The province's departments on the server (made once, through the admin API) and its operator's."""
    with httpx.Client(base_url=ui_server.base_url, timeout=30) as client:
        if client.get("/v1/departments/fz-estate/officers", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404:
            province = HttpProvince.create(client)
            ids = province.ids
            operator = {"id": OPERATOR_DEPARTMENT, "name": "福建省大数据管理局", "uscc": make_uscc("11350000MB0000001"),
                        "roles": ["auditor"], "kind": "data", "region": "350000"}
            response = client.post("/v1/departments", json=operator, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert response.status_code == 201, response.text
        else:
            ids = {"operator": OPERATOR_DEPARTMENT, "approver": "fz-estate", "gulou": "fz-gulou-police", "city": "fz-police", "auditor": "fj-audit",
                   "stranger": "xm-estate"}
    return Desk(ui_server, {**ids, "operator": OPERATOR_DEPARTMENT})
