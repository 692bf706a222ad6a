"""Each role's day in a real browser against ``nocert serve`` on both stores, with no API key in sight:
the clerk raises a check (its routing shown before sending), the police officer answers it the next
morning with a sealed proof it sees verified, the clerk closes it as exempted, the auditor replays it and
verifies an event's inclusion, and the province reads its dashboard. Every page is checked by axe and the
``page`` fixture fails any request to another origin. Screenshots go to ``NOCERT_SCREENS`` when set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.workbench.sessions import Officer
from domain.identifiers import make_id_number
from tests.ui.conftest import PASSWORD, Desk, UiServer

APPLICANT = make_id_number("35010219900101123")  # registered in Gulou: routes to its police
SCREENS = os.environ.get("NOCERT_SCREENS")
PHONE = {"width": 390, "height": 844}


def sign_in(page: Any, officer: Officer) -> None:
    page.goto("/ui/sign-in")
    page.get_by_label("部门编号").fill(officer.department)
    page.get_by_label("登录名").fill(officer.login)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.locator("h1", has_text="我的工作台").wait_for()


def shoot(page: Any, server: UiServer, name: str) -> None:
    """A full-page screenshot of the page as it is (desktop), and one at a phone's width."""
    if not SCREENS:
        return
    folder = Path(SCREENS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}-{server.kind}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(folder / f"{name}-{server.kind}-phone.png"), full_page=True)
    page.set_viewport_size(size)


def raise_check(page: Any) -> str:
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="发起协查").click()
    page.get_by_label("事项编码").fill("real-estate-deregistration")
    page.get_by_label("事项名称").fill("不动产注销登记")
    page.get_by_label("申请人姓名").fill("林某某")
    page.get_by_label("申请人身份证号码").fill(APPLICANT)
    page.get_by_label("用途").fill("不动产注销登记身份一致性核验")
    page.get_by_label("授权凭证编号").fill("face-0001")
    page.get_by_role("button", name="核对发送对象").click()
    page.locator("#route", has_text="fz-gulou-police").wait_for()  # the routing, before anything is sent
    page.get_by_role("button", name="确认发送").click()
    page.get_by_role("status").get_by_text("协查已发送。").wait_for()
    return page.url.split("/ui/checks/")[1].split("?")[0]


def test_a_day_of_the_clerk_the_officer_and_the_auditor(
    browser: Any, page: Any, desk: Desk, axe: Callable[[Any], Any], request_log: Any
) -> None:
    clerk, police, auditor = desk.officer("approver"), desk.officer("gulou"), desk.officer("auditor")
    sign_in(page, clerk)
    shoot(page, desk.server, "home")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="发起协查").click()
    axe(page)
    shoot(page, desk.server, "new-check")
    check_id = raise_check(page)
    axe(page)

    # The next morning: the officer signs in, finds it in the inbox with its countdown, and answers it.
    page.context.clear_cookies()
    sign_in(page, police)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="待办协查").click()
    row = page.locator("tr", has=page.locator(f"a[href='/ui/checks/{check_id}']"))
    row.get_by_text("剩余").wait_for()
    axe(page)
    shoot(page, desk.server, "inbox")
    row.get_by_role("link").click()
    page.get_by_role("button", name="受理").click()
    page.get_by_role("status").get_by_text("已受理。").wait_for()
    page.get_by_label("说明").fill("经核查为同一人")
    page.get_by_role("button", name="答复并出具电子证明").click()
    page.get_by_role("status").get_by_text("已答复，电子证明已出具。").wait_for()
    page.locator("#verdict.valid").wait_for()  # the proof it sealed, verified
    axe(page)
    shoot(page, desk.server, "check-replied")

    # The clerk closes it as exempted, with the proof downloaded.
    page.context.clear_cookies()
    sign_in(page, clerk)
    page.goto(f"/ui/checks/{check_id}")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载电子证明（JWS）").click()
    assert download.value.suggested_filename.endswith(".jws")
    page.get_by_label("免于提交").check()
    page.get_by_role("button", name="办结").click()
    page.get_by_role("status").get_by_text("已办结。").wait_for()
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="协查列表").click()
    page.get_by_label("状态").select_option("closed")
    page.get_by_role("button", name="筛选").click()
    page.locator(f"a[href='/ui/checks/{check_id}']").wait_for()
    shoot(page, desk.server, "my-checks")

    # The auditor replays it at its first version, then verifies an event's inclusion in the ledger.
    page.context.clear_cookies()
    sign_in(page, auditor)
    page.goto(f"/ui/checks/{check_id}")
    assert APPLICANT not in page.locator("main").inner_text()  # auditors see the number masked
    page.get_by_label("版本").fill("1")
    page.get_by_role("button", name="查看该版本").first.click()
    page.locator("h1", has_text="待受理").wait_for()
    axe(page)
    shoot(page, desk.server, "check-replay")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="审计账本").click()
    page.locator("#tree-size").wait_for()
    page.get_by_label("条目序号（从 0 开始）").fill("0")
    page.get_by_role("button", name="核验", exact=True).click()
    page.locator("#inclusion-result.valid").wait_for()
    page.get_by_role("button", name="运行审计核验").click()
    page.locator("#audit-report.valid").wait_for()
    axe(page)
    shoot(page, desk.server, "audit")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="全省概览").click()
    page.locator("#coverage").wait_for()
    page.locator("svg.chart").first.wait_for()
    axe(page)
    shoot(page, desk.server, "dashboard")


def test_a_former_issuer_sees_masked_data(page: Any, desk: Desk) -> None:
    clerk, police = desk.officer("approver"), desk.officer("gulou")
    sign_in(page, clerk)
    check_id = raise_check(page)
    page.context.clear_cookies()
    sign_in(page, police)
    page.goto(f"/ui/checks/{check_id}")
    assert APPLICANT in page.locator("main").inner_text()  # the issuer addressed sees it in full
    page.get_by_label("转交给（部门编号）").fill(desk.ids["city"])
    page.locator("#forward-reason").fill("属市局管辖")
    page.get_by_role("button", name="转交其他部门").click()
    page.get_by_role("status").get_by_text("已转交。").wait_for()
    text = page.locator("main").inner_text()
    assert APPLICANT not in text and APPLICANT[:6] + "********" + APPLICANT[-4:] in text
    assert page.get_by_role("button", name="受理").count() == 0  # nothing left for it to do


def test_a_form_posted_after_the_session_ended_changes_nothing(page: Any, desk: Desk, ui_server: UiServer) -> None:
    clerk = desk.officer("approver")
    sign_in(page, clerk)
    check_id = raise_check(page)
    with ui_server.database.transaction() as cursor:  # 31 minutes idle
        cursor.execute("UPDATE ui_sessions SET seen_at = seen_at - 1860 WHERE login = ?", (clerk.login,))
    page.get_by_role("button", name="撤回").wait_for()
    page.locator("#withdraw-reason").fill("申请人撤回")
    page.get_by_role("button", name="撤回").click()
    page.locator("h1", has_text="请求未被接受").wait_for()  # the CSRF check finds no live session
    page.goto("/ui/inbox")
    assert "/ui/sign-in" in page.url
    sign_in(page, clerk)
    page.goto(f"/ui/checks/{check_id}")
    page.locator("h1", has_text="待受理").wait_for()  # not withdrawn


def test_the_operator_reads_coverage_and_retires_a_category(page: Any, desk: Desk, axe: Callable[[Any], Any]) -> None:
    operator = desk.officer("operator")
    code = f"op-{uuid.uuid4().hex[:8]}"
    sign_in(page, operator)
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="平台管理").click()
    page.locator("summary", has_text="新增证明事项").click()
    form = page.locator("form[action='/ui/operator/category']")
    form.get_by_label("编码").fill(code)
    form.get_by_label("名称").fill("测试证明")
    form.get_by_label("开具部门类型").fill("police")
    form.get_by_label("办理时限（小时）").fill("24")
    form.get_by_label("协查").check()
    form.get_by_role("button", name="新增证明事项").click()
    page.get_by_role("status").get_by_text("已保存。").wait_for()
    axe(page)
    shoot(page, desk.server, "operator")

    page.get_by_role("navigation", name="主导航").get_by_role("link", name="全省概览").click()
    before = int(page.locator("#coverage").get_attribute("data-total") or 0)
    page.locator(f"#coverage tr[data-category='{code}']").wait_for()
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="平台管理").click()
    page.locator(f"tr[data-category='{code}']").get_by_role("button", name="停用").click()
    page.get_by_role("status").get_by_text("已保存。").wait_for()
    assert page.locator(f"tr[data-category='{code}']").get_by_role("button", name="启用").count() == 1
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="全省概览").click()
    assert int(page.locator("#coverage").get_attribute("data-total") or 0) == before - 1
