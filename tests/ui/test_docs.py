"""/docs and /redoc render in a browser with nothing but this server (issue 12 item 3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ui.conftest import RequestLog, UiServer

# Operations that must be listed (by path) in both renderings.
EXPECTED_PATHS = ("/v1/checks", "/v1/departments", "/v1/trust/root")
#: ReDoc 2.5.4's sidebar shows its vendor's logo from the vendor's site, whatever it is told.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_swagger_ui_lists_the_operations_offline(page: Any, request_log: RequestLog) -> None:
    page.goto("/docs")
    for path in EXPECTED_PATHS:
        page.locator(".opblock-summary-path", has_text=path).first.wait_for()
    assert page.locator(".opblock").count() > 20
    page.locator(".opblock-summary-path", has_text="/v1/trust/root").first.click()
    page.locator(".opblock-body").first.wait_for()
    assert any(url.endswith("/openapi.json") for url in request_log.requests)
    assert any("/static/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js" in url for url in request_log.requests)


def test_redoc_lists_the_operations_offline(page: Any, request_log: RequestLog) -> None:
    request_log.expected_blocks.add(REDOC_LOGO)
    page.goto("/redoc")
    page.locator("h1", has_text="nocert").first.wait_for()
    for path in EXPECTED_PATHS:
        page.locator(".http-verb + span", has_text=path).first.wait_for(state="attached")
    assert page.locator("[data-section-id^='operation/']").count() > 20
    page.get_by_placeholder("Search...").fill("departments")  # the search index runs in a blob: worker
    page.locator("[data-role='search:results'] li", has_text="List Departments").first.wait_for()
    assert any("/static/vendor/redoc-2.5.4/redoc.standalone.js" in url for url in request_log.requests)
    assert REDOC_LOGO not in request_log.requests, "the policy blocks the logo before any request"
    assert [v["blocked"] for v in request_log.violations] == [REDOC_LOGO]


def test_the_request_log_catches_another_origin(browser: Any, ui_server: UiServer) -> None:
    """The harness itself: a request to another origin is caught, and aborted before it leaves."""
    from playwright.sync_api import Error

    log = RequestLog(ui_server.base_url)
    context = browser.new_context(base_url=ui_server.base_url)
    try:
        context.route("**/*", log.route)
        page = context.new_page()
        page.goto("/ui/")
        with pytest.raises(Error, match="ERR_BLOCKED_BY_CLIENT"):
            page.goto("http://192.0.2.1/beacon")
    finally:
        context.close()
    assert log.foreign == ["http://192.0.2.1/beacon"]
    assert log.problems() == ["request to another origin: http://192.0.2.1/beacon"]


def test_docs_pages_carry_a_policy_of_this_origin_only(ui_server: UiServer) -> None:
    for path in ("/docs", "/redoc"):
        policy = httpx.get(ui_server.base_url + path).headers["content-security-policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        for name, sources in directives.items():
            for source in sources.split():
                assert source in ("'self'", "'none'", "data:", "blob:") or source.startswith(("'sha256-", "'nonce-")), (
                    f"{path}: {name} allows {source}"
                )
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
