"""The workbench's layout in a real browser, in Chinese and English: landmarks, the skip link and the
focus order by keyboard, visible focus, error summaries linked to their fields, axe-core clean, readable
on a phone, printable, and nothing from another origin (the ``page`` fixture checks that on every test)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

PAGES = ("/ui/", "/ui/sign-in", "/ui/enrol")
LANGUAGES = ("zh-CN", "en")
PHONE = {"width": 360, "height": 740}

ACTIVE = """() => {
  const e = document.activeElement;
  return e.id || e.getAttribute("href") || e.getAttribute("name") || e.tagName.toLowerCase();
}"""


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_in_both_languages(page: Any, axe: Callable[[Any], Any], path: str, lang: str) -> None:
    page.goto(f"{path}?lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    for role in ("banner", "main", "contentinfo"):
        assert page.get_by_role(role).count() == 1, role
    assert page.get_by_role("navigation").count() == 2  # the site's and the languages'
    assert page.locator("h1").count() == 1
    passes = {rule["id"] for rule in axe(page)}
    assert {"html-has-lang", "document-title", "landmark-one-main", "color-contrast"} <= passes
    if page.locator("form").count():
        assert {"label"} <= passes


def test_the_skip_link_comes_first_and_moves_focus_to_the_main_content(page: Any) -> None:
    page.goto("/ui/sign-in")
    skip = page.locator("a.skip-link")
    assert not _in_viewport(skip)  # out of sight until focused
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE) == "#main"
    assert _in_viewport(skip)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'main'")
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE) == "field-department"  # past the header, into the form


def test_the_focus_order_follows_the_page(page: Any) -> None:
    page.goto("/ui/sign-in")
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(page.evaluate(ACTIVE))
    assert order == [
        "#main",
        "/ui/",
        "/ui/",
        "/ui/sign-in",
        "/ui/enrol",
        "/ui/sign-in?lang=zh-CN",
        "/ui/sign-in?lang=en",
        "field-department",
        "field-login",
        "field-password",
        "field-totp",
        "button",
    ]


def test_focus_is_visible(page: Any) -> None:
    page.goto("/ui/sign-in")
    for selector in ("#field-login", "button[type=submit]", "nav a >> nth=0"):
        page.locator(selector).focus()
        style = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        width = page.evaluate("() => parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
        assert style != "none" and width >= 2, selector


def test_an_error_summary_takes_focus_and_links_to_its_fields(page: Any, axe: Callable[[Any], Any]) -> None:
    page.goto("/ui/sign-in?lang=en")
    page.get_by_label("Login").fill("someone")
    page.get_by_role("button", name="Sign in").click()
    summary = page.get_by_role("alert")
    summary.wait_for()
    page.wait_for_function("() => document.activeElement.id === 'error-summary'")  # autofocus runs at a frame
    assert page.title().startswith("There is a problem")
    links = summary.get_by_role("link")
    assert links.all_inner_texts() == ["Department id is required", "Password is required"]
    department = page.get_by_label("Department id")
    assert department.get_attribute("aria-invalid") == "true"
    assert "error-department" in (department.get_attribute("aria-describedby") or "")
    assert page.get_by_label("Login").input_value() == "someone"  # kept
    links.first.click()
    page.wait_for_function("() => document.activeElement.id === 'field-department'")
    axe(page)


def test_the_language_switch_is_kept_across_pages(page: Any) -> None:
    page.goto("/ui/")
    assert page.locator("h1").inner_text() == "关于协查工作台"
    page.get_by_role("navigation", name="语言").get_by_role("link", name="English").click()
    page.locator("html[lang=en]").wait_for(state="attached")
    assert page.locator("h1").inner_text() == "About the workbench"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    page.locator("h1", has_text="Sign in").wait_for()
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("link", name="中文").click()
    page.locator("h1", has_text="登录").wait_for()


@pytest.mark.parametrize("path", PAGES)
def test_pages_fit_a_phone_without_sideways_scrolling(browser: Any, ui_server: Any, request_log: Any, path: str) -> None:
    context = browser.new_context(base_url=ui_server.base_url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        context.route("**/*", request_log.route)
        phone = context.new_page()
        phone.goto(path)
        phone.locator("h1").wait_for()
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        body_size = phone.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
        assert body_size >= 16
    finally:
        context.close()
    assert not request_log.problems()


def test_print_shows_the_content_without_navigation(page: Any) -> None:
    page.goto("/ui/")
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation", name="主导航").is_visible()
    assert not page.locator("a.skip-link").is_visible()
    assert page.locator("h1").is_visible()
    page.emulate_media(media="screen")
    assert page.get_by_role("navigation", name="主导航").is_visible()


def _in_viewport(locator: Any) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] + box["height"] > 0 and box["x"] + box["width"] > 0


def test_the_axe_check_fails_on_a_serious_violation(page: Any, axe: Callable[[Any], Any]) -> None:
    """The harness itself: an unlabelled input and an image without text are caught."""
    page.set_content('<html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
                     '<input type="text"><img src="data:,"></main></body></html>')
    with pytest.raises(AssertionError, match=r"(?s)image-alt \(critical\).*label \(critical\)"):
        axe(page)
