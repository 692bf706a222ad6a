"""Enrolment, sign-in, sign-out and the end of sessions in a real browser against ``nocert serve``."""

from __future__ import annotations

from typing import Any

from api.workbench.pages import SESSION_COOKIE
from api.workbench.sessions import Sessions
from tests.ui.conftest import UiServer

PASSWORD = "correct horse battery"


def _sign_in(page: Any, officer: Any, password: str = PASSWORD) -> None:
    page.goto("/ui/sign-in")
    page.get_by_label("部门编号").fill(officer.department)
    page.get_by_label("登录名").fill(officer.login)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()


def test_an_officer_enrols_signs_in_and_out(page: Any, ui_server: UiServer) -> None:
    officer, code = ui_server.enrolment()
    page.goto("/ui/")
    page.get_by_role("link", name="首次设置密码").click()
    page.get_by_label("部门编号").fill(officer.department)
    page.get_by_label("登录名").fill(officer.login)
    page.get_by_label("开通码").fill(code)
    page.get_by_label("新密码", exact=True).fill(PASSWORD)
    page.get_by_label("再次输入新密码").fill(PASSWORD)
    page.get_by_role("button", name="设置密码").click()
    page.get_by_role("status").get_by_text("密码已设置，请登录。").wait_for()

    _sign_in(page, officer)
    page.locator("h1", has_text="我的工作台").wait_for()
    assert officer.login in page.locator("main").inner_text()
    assert page.get_by_role("navigation", name="主导航").get_by_role("link", name="我的工作台").count() == 1

    page.get_by_role("button", name="退出登录").click()
    page.get_by_role("status").get_by_text("您已退出登录。").wait_for()
    page.goto("/ui/home")
    page.locator("h1", has_text="登录").wait_for()


def test_the_session_cookie_is_secure_http_only_and_strict_over_http_on_localhost(page: Any, ui_server: UiServer) -> None:
    """Chromium keeps a Secure cookie from http://127.0.0.1 (a potentially trustworthy origin), so the
    cookie is Secure everywhere: no setting to turn it off."""
    officer = ui_server.officer(PASSWORD)
    _sign_in(page, officer)
    page.locator("h1", has_text="我的工作台").wait_for()
    [cookie] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui" and cookie["expires"] == -1
    assert page.evaluate("() => document.cookie") == ""  # not readable by scripts


def test_an_idle_session_ends_and_the_officer_is_told(page: Any, ui_server: UiServer) -> None:
    officer = ui_server.officer(PASSWORD)
    _sign_in(page, officer)
    page.locator("h1", has_text="我的工作台").wait_for()
    with ui_server.database.transaction() as cursor:  # 31 minutes pass without a request
        cursor.execute("UPDATE ui_sessions SET seen_at = seen_at - 1860 WHERE login = ?", (officer.login,))
    page.reload()
    page.get_by_role("status").get_by_text("登录已过期，请重新登录。").wait_for()
    assert page.url.endswith("/ui/sign-in?done=expired")


def test_ending_an_officers_sessions_signs_it_out_at_once(page: Any, ui_server: UiServer) -> None:
    officer = ui_server.officer(PASSWORD)
    _sign_in(page, officer)
    page.locator("h1", has_text="我的工作台").wait_for()
    assert Sessions(ui_server.database, idle=1800, absolute=43200).end_officer(officer) == 1
    page.reload()
    page.get_by_role("status").get_by_text("登录已过期，请重新登录。").wait_for()


def test_a_form_with_a_wrong_csrf_token_is_refused_with_a_page(page: Any, ui_server: UiServer) -> None:
    officer = ui_server.officer(PASSWORD)
    page.goto("/ui/sign-in")
    page.locator("input[name=csrf_token]").evaluate("(input) => { input.value = 'forged'; }")
    page.get_by_label("部门编号").fill(officer.department)
    page.get_by_label("登录名").fill(officer.login)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    with page.expect_response(lambda response: response.url.endswith("/ui/sign-in") and response.request.method == "POST") as answer:
        page.get_by_role("button", name="登录").click()
    assert answer.value.status == 403
    page.locator("h1", has_text="请求未被接受").wait_for()
    page.goto("/ui/home")
    page.locator("h1", has_text="登录").wait_for()  # not signed in


def test_a_wrong_password_says_so_and_keeps_the_form(page: Any, ui_server: UiServer) -> None:
    officer = ui_server.officer(PASSWORD)
    _sign_in(page, officer, "not the password")
    page.get_by_role("alert").get_by_text("部门编号、登录名、密码或动态口令不正确").wait_for()
    assert page.get_by_label("登录名").input_value() == officer.login
    assert page.get_by_label("密码", exact=True).input_value() == ""
