"""The workbench's pages over HTTP (no browser) on both stores: session cookies, CSRF on every form,
sign-in with lock-out, enrolment, sign-out, ending an officer's sessions, and the language switch."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.csp import WORKBENCH_POLICY
from api.ratelimit import AuthFailureLimiter
from api.workbench.pages import FORM_COOKIE, SESSION_COOKIE, Workbench
from api.workbench.sessions import Officer
from tests.api.conftest import build_services, module_database_url  # noqa: F401 (a fixture)

PASSWORD = "correct horse battery"
POSTS = ("/ui/sign-in", "/ui/enrol", "/ui/sign-out")


@pytest.fixture(scope="module")
def app(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # noqa: F811
    services = build_services(module_database_url, tmp_path_factory.mktemp("keys"))
    try:
        yield create_app(services, start_views=False)
    finally:
        services.close()


@pytest.fixture
def workbench(app: Any) -> Workbench:
    return app.state.workbench


@pytest.fixture
def browser(app: Any) -> Iterator[TestClient]:
    """A client with a cookie jar of its own, over https (so that Secure cookies are sent back)."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def new_officer(workbench: Workbench, password: str | None = PASSWORD) -> Officer:
    officer = Officer("fz-gulou-police", f"officer-{uuid.uuid4().hex[:8]}")
    code = workbench.accounts.create(officer)
    if password is not None:
        workbench.accounts.enrol(officer, code, password)
    return officer


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, "the form has no CSRF token"
    return match.group(1)


def sign_in(browser: TestClient, officer: Officer, password: str = PASSWORD, **extra: str) -> httpx.Response:
    token = csrf_of(browser.get("/ui/sign-in"))
    form = {"csrf_token": token, "department": officer.department, "login": officer.login, "password": password}
    return browser.post("/ui/sign-in", data={**form, **extra})


def test_a_form_page_sets_its_nonce_in_a_strict_cookie(browser: TestClient) -> None:
    page = browser.get("/ui/sign-in")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{FORM_COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/ui"} <= attributes
    assert not any(a.startswith(("max-age", "expires", "domain")) for a in attributes)  # ends with the browser
    assert page.headers["content-security-policy"] == WORKBENCH_POLICY
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"  # the gateway's headers apply as everywhere
    again = browser.get("/ui/sign-in")
    assert "set-cookie" not in again.headers  # the same nonce goes on
    assert csrf_of(again) == csrf_of(page)


def test_anonymous_visits_store_no_session(app: Any, workbench: Workbench) -> None:
    """A bot fetching the sign-in page (or the enrolment page) over and over fills no table."""
    database = workbench.sessions.database

    def rows() -> int:
        with database.transaction() as cursor:
            return int(cursor.execute("SELECT count(*) FROM ui_sessions").fetchone()[0])

    before = rows()
    for visit in range(50):
        with TestClient(app, base_url="https://testserver") as bot:  # a new client each time: no cookie
            assert bot.get("/ui/sign-in" if visit % 2 else "/ui/enrol").status_code == 200
    assert rows() == before


def test_the_form_token_is_bound_to_its_nonce_and_the_servers_key(browser: TestClient, workbench: Workbench) -> None:
    token = csrf_of(browser.get("/ui/sign-in"))
    nonce = browser.cookies[FORM_COOKIE]
    assert workbench.sessions.anonymous(nonce).csrf_token == token
    forged = hmac.new(nonce.encode(), b"nocert workbench csrf", hashlib.sha256).hexdigest()  # a session's rule
    assert browser.post("/ui/sign-in", data={"csrf_token": forged}).status_code == 403
    browser.cookies.clear()
    browser.cookies.set(FORM_COOKIE, "x" * len(nonce), domain="testserver.local", path="/ui")  # a planted nonce
    assert browser.post("/ui/sign-in", data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize(
    "body",
    [
        {"data": {}},
        {"data": {"csrf_token": "0" * 64}},
        {"data": {"csrf_token": ""}},
        {"json": {"csrf_token": "x"}},
        {"content": b"\xff\x00garbage", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        {"content": b"--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nabc\r\n--x--\r\n",
         "headers": {"content-type": "multipart/form-data; boundary=x"}},
    ],
    ids=["none", "wrong", "empty", "json", "broken-multipart", "a-file"],
)
def test_a_post_without_its_sessions_csrf_token_is_a_403_page(browser: TestClient, path: str, body: dict[str, Any]) -> None:
    browser.get("/ui/sign-in")  # a live session, so only the token is wrong
    answer = browser.post(path, **body)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in answer.text and "请求未被接受" in answer.text


@pytest.mark.parametrize("path", POSTS)
def test_a_token_without_its_session_is_refused(app: Any, browser: TestClient, path: str) -> None:
    token = csrf_of(browser.get("/ui/sign-in"))
    with TestClient(app, base_url="https://testserver") as stranger:  # another browser, no cookie
        assert stranger.post(path, data={"csrf_token": token}).status_code == 403
    with TestClient(app, base_url="https://testserver") as other:  # another browser's own session
        other.get("/ui/sign-in")
        assert other.post(path, data={"csrf_token": token}).status_code == 403


def test_signing_in_replaces_the_anonymous_session_and_opens_home(browser: TestClient, workbench: Workbench) -> None:
    officer = new_officer(workbench)
    browser.get("/ui/sign-in")
    anonymous = browser.cookies[FORM_COOKIE]
    answer = sign_in(browser, officer)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/home"
    signed_in = browser.cookies[SESSION_COOKIE]
    assert signed_in != anonymous  # a new id at sign-in: a planted id never becomes a signed-in one
    assert workbench.sessions.resume(anonymous) is None and FORM_COOKIE not in browser.cookies
    home = browser.get("/ui/home")
    assert home.status_code == 200 and officer.login in home.text and officer.department in home.text


def test_home_needs_a_signed_in_session(browser: TestClient) -> None:
    assert browser.get("/ui/home").headers["location"] == "/ui/sign-in"
    browser.get("/ui/sign-in")  # an anonymous session is not signed in
    assert browser.get("/ui/home").headers["location"] == "/ui/sign-in"


def test_a_wrong_password_is_a_401_with_an_error_linked_to_the_field(browser: TestClient, workbench: Workbench) -> None:
    officer = new_officer(workbench)
    answer = sign_in(browser, officer, "wrong password here")
    assert answer.status_code == 401
    assert 'href="#field-password"' in answer.text and 'aria-invalid="true"' in answer.text
    assert "部门编号、登录名、密码或动态口令不正确" in answer.text
    assert officer.login in answer.text  # what was typed stays, except the password
    assert "wrong password here" not in answer.text
    unknown = sign_in(browser, Officer(officer.department, "nobody-" + uuid.uuid4().hex[:6]), PASSWORD)
    assert unknown.status_code == 401 and "部门编号、登录名、密码或动态口令不正确" in unknown.text  # the same answer


def test_missing_fields_are_each_named_and_linked(browser: TestClient) -> None:
    token = csrf_of(browser.get("/ui/sign-in"))
    answer = browser.post("/ui/sign-in", data={"csrf_token": token, "login": "  "})
    assert answer.status_code == 400
    for field, label in (("department", "部门编号"), ("login", "登录名"), ("password", "密码")):
        assert f'href="#field-{field}">请填写{label}</a>' in answer.text
        assert f'id="error-{field}"' in answer.text


def test_the_fifth_failure_locks_the_login_even_for_the_right_password(browser: TestClient, workbench: Workbench) -> None:
    officer = new_officer(workbench)
    limit = workbench.settings.ui_lockout_failures
    statuses = [sign_in(browser, officer, f"wrong password {n}").status_code for n in range(limit)]
    assert statuses == [401] * (limit - 1) + [429]
    locked = sign_in(browser, officer)
    assert locked.status_code == 429 and "已锁定" in locked.text
    assert SESSION_COOKIE not in browser.cookies and browser.get("/ui/home").status_code == 303


def test_enrolment_sets_the_password_with_the_code_once(browser: TestClient, workbench: Workbench) -> None:
    officer = Officer("fz-gulou-police", f"officer-{uuid.uuid4().hex[:8]}")
    code = workbench.accounts.create(officer)
    token = csrf_of(browser.get("/ui/enrol"))
    form = {"csrf_token": token, "department": officer.department, "login": officer.login, "enrolment_code": code}

    def enrol(**fields: str) -> httpx.Response:
        return browser.post("/ui/enrol", data={**form, **fields})

    wrong_code = enrol(enrolment_code="AAAA-BBBB-CCCC-DDDD", password=PASSWORD, repeat=PASSWORD)
    assert wrong_code.status_code == 400 and 'href="#field-enrolment_code"' in wrong_code.text
    mismatch = enrol(password=PASSWORD, repeat=PASSWORD + "!")
    assert mismatch.status_code == 400 and 'href="#field-repeat"' in mismatch.text
    short = enrol(password="short", repeat="short")
    assert short.status_code == 400 and "密码至少需要 12 个字符" in short.text
    with_login = enrol(password=f"x-{officer.login}-x", repeat=f"x-{officer.login}-x")
    assert "密码不得包含登录名" in with_login.text
    done = enrol(password=PASSWORD, repeat=PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/ui/sign-in?done=enrolled"
    assert "密码已设置，请登录。" in browser.get(done.headers["location"]).text
    again = enrol(password="another long password", repeat="another long password")
    assert again.status_code == 400 and "开通码不正确或已使用" in again.text
    assert sign_in(browser, officer).status_code == 303


def test_signing_out_ends_the_session(browser: TestClient, workbench: Workbench) -> None:
    officer = new_officer(workbench)
    sign_in(browser, officer)
    session_id = browser.cookies[SESSION_COOKIE]
    token = csrf_of(browser.get("/ui/home"))
    answer = browser.post("/ui/sign-out", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in?done=signed_out"
    assert workbench.sessions.resume(session_id) is None
    browser.cookies.set(SESSION_COOKIE, session_id, domain="testserver.local", path="/ui")
    assert browser.get("/ui/home").headers["location"] == "/ui/sign-in?done=expired"


def test_ending_an_officers_sessions_signs_out_every_browser(app: Any, workbench: Workbench) -> None:
    officer = new_officer(workbench)
    with (
        TestClient(app, base_url="https://testserver", follow_redirects=False) as desk,
        TestClient(app, base_url="https://testserver", follow_redirects=False) as phone,
    ):
        for browser in (desk, phone):
            sign_in(browser, officer)
            assert browser.get("/ui/home").status_code == 200
        assert workbench.sessions.end_officer(officer) == 2
        for browser in (desk, phone):
            assert browser.get("/ui/home").headers["location"] == "/ui/sign-in?done=expired"


def test_the_language_is_chinese_unless_english_is_chosen_and_kept(browser: TestClient) -> None:
    chinese = browser.get("/ui/")
    assert '<html lang="zh-CN">' in chinese.text and "关于协查工作台" in chinese.text
    english = browser.get("/ui/?lang=en")
    assert '<html lang="en">' in english.text and "About the workbench" in english.text
    assert "nocert_lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in browser.get("/ui/sign-in").text  # kept in the cookie
    assert '<html lang="zh-CN">' in browser.get("/ui/?lang=zh-CN").text


def test_only_known_messages_are_shown_after_a_redirect(browser: TestClient) -> None:
    assert "您已退出登录。" in browser.get("/ui/sign-in?done=signed_out").text
    page = browser.get("/ui/sign-in?done=<script>alert(1)</script>")
    assert page.status_code == 200 and "<script>alert" not in page.text and "alert(1)" not in page.text


def test_failed_sign_ins_from_one_address_are_answered_429_before_any_password_is_checked(
    app: Any, workbench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbench, "address_limiter", AuthFailureLimiter(limit=3, window=60))
    officers = [new_officer(workbench) for _ in range(4)]  # one try each: no login is locked
    with TestClient(app, base_url="https://testserver", follow_redirects=False, client=("192.0.2.7", 5000)) as bot:
        statuses = [sign_in(bot, officer, "wrong password").status_code for officer in officers[:3]]
        assert statuses == [401, 401, 401]
        limited = sign_in(bot, officers[3])  # the right password, from the limited address
        assert limited.status_code == 429 and SESSION_COOKIE not in bot.cookies
        assert "来自您所在网络地址的登录失败次数过多，请于" in limited.text and "秒后再试" in limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert '<html lang="zh-CN">' in limited.text and 'id="error-summary"' in limited.text
        assert workbench.lockout.locked_until(officers[3]) is None  # nothing counted against the login
    with TestClient(app, base_url="https://testserver", follow_redirects=False, client=("192.0.2.8", 5000)) as colleague:
        assert sign_in(colleague, officers[3]).status_code == 303  # another address signs in
