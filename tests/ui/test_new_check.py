"""The identity number on the raise-check page: marked invalid as typed by the browser alone (the page has
no script: ``pattern`` and ``:user-invalid``), and a number of the right form with a wrong check character
refused by the server with a Chinese message, the form shown again with what was typed, nothing recorded."""

from __future__ import annotations

from typing import Any

from api.bootstrap import EVENTS_TABLE
from tests.ui.conftest import Desk, UiServer
from tests.ui.test_roles import APPLICANT, sign_in

WRONG_CHECK_CHAR = APPLICANT[:17] + ("0" if APPLICANT[17] != "0" else "1")


def _events(server: UiServer) -> int:
    with server.database.transaction() as cursor:
        return int(cursor.execute(f"SELECT count(*) FROM {EVENTS_TABLE[server.kind]}").fetchone()[0])


def fill_new_check(page: Any, id_number: str) -> None:
    """The new-check form filled for a transfer registration of 陈某某 (not sent)."""
    page.get_by_label("事项编码").fill("real-estate-deregistration")
    page.get_by_label("事项名称").fill("不动产转移登记")
    page.get_by_label("申请人姓名").fill("陈某某")
    page.get_by_label("申请人身份证号码").fill(id_number)
    page.get_by_label("用途").fill("身份核验")
    page.get_by_label("授权凭证编号").fill("face-0002")


def test_the_identity_number_is_marked_invalid_as_typed(page: Any, desk: Desk, axe: Any) -> None:
    sign_in(page, desk.officer("approver"))
    page.goto("/ui/checks/new")
    field, note = page.get_by_label("申请人身份证号码"), page.locator("#as-typed-id_number")
    assert not note.is_visible()  # nothing typed yet: nothing marked
    field.fill("3501021990")
    field.press("Tab")
    assert field.evaluate("element => element.matches(':user-invalid')")
    note.wait_for(state="visible")
    assert note.inner_text() == "格式不正确：应为 17 位数字加 1 位数字或 X"
    assert field.evaluate("element => getComputedStyle(element).borderLeftWidth") == "6px"
    axe(page)
    field.fill(APPLICANT[:17] + "x")  # a lower-case x is of the right form too (the server upper-cases it)
    field.press("Tab")
    note.wait_for(state="hidden")
    assert field.evaluate("element => element.validity.valid")


def test_the_server_refuses_a_wrong_check_character_and_records_nothing(
    page: Any, desk: Desk, ui_server: UiServer
) -> None:
    sign_in(page, desk.officer("approver"))
    page.goto("/ui/checks/new")
    fill_new_check(page, APPLICANT)
    page.get_by_role("button", name="核对发送对象").click()
    page.locator("#route").wait_for()  # a valid number: the route is shown and the check may be sent
    before = _events(ui_server)
    page.get_by_label("申请人身份证号码").fill(WRONG_CHECK_CHAR)  # right form: the browser lets it through
    with page.expect_response(lambda response: response.url.endswith("/ui/checks/new")) as answer:
        page.get_by_role("button", name="确认发送").click()
    assert answer.value.status == 422
    message = "身份证号码校验位（第 18 位）不正确，请核对后重新输入"
    page.locator("#error-summary").get_by_role("link", name=message).wait_for()
    page.locator("#error-id_number", has_text=message).wait_for()
    assert page.get_by_label("申请人身份证号码").input_value() == WRONG_CHECK_CHAR  # what was typed, kept
    assert page.get_by_label("事项名称").input_value() == "不动产转移登记"
    assert page.get_by_label("申请人身份证号码").get_attribute("aria-invalid") == "true"
    assert page.locator("#route").count() == 0  # the send button is gone until a new preview
    assert _events(ui_server) == before
