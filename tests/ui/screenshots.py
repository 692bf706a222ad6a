"""A PNG of every workbench page for each role: ``python -m tests.ui.screenshots DIR`` (not run by the suite;
its output is not committed).

Starts ``nocert serve`` on a throw-away SQLite store, makes the province through the admin API and one
officer per role, then drives Debian's Chromium (``NOCERT_CHROMIUM``, default /usr/bin/chromium) through each
role's pages, at a desktop's width and at a phone's: ``DIR/<role>-<page>.png`` and ``...-phone.png``.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.support import ADMIN_KEY, Server, server_env
from tests.ui.conftest import CHROMIUM, LAUNCH_ARGS, OPERATOR_DEPARTMENT, Desk, UiServer, open_database, province_desk
from tests.ui.test_new_check import WRONG_CHECK_CHAR, fill_new_check
from tests.ui.test_roles import PHONE, raise_check, sign_in

DESKTOP = {"width": 1280, "height": 900}


@contextlib.contextmanager
def serving(workdir: Path) -> Iterator[UiServer]:
    url = f"sqlite:///{workdir}/nocert.db"
    env = server_env(url, workdir / "keys", NOCERT_UI_OPERATOR_DEPARTMENT=OPERATOR_DEPARTMENT,
                     NOCERT_WEBHOOK_ALLOW="http://127.0.0.1", NOCERT_WEBHOOK_RETRY="0.1")
    server = Server(workdir, env)
    server.start()
    database = open_database(url)
    try:
        yield UiServer("sqlite", server, database)
    finally:
        database.close()
        server.stop()


class Camera:
    def __init__(self, page: Any, folder: Path) -> None:
        self.page, self.folder, self.taken = page, folder, []  # type: list[Path]

    def shoot(self, name: str) -> None:
        for suffix, size in (("", DESKTOP), ("-phone", PHONE)):
            self.page.set_viewport_size(size)
            path = self.folder / f"{name}{suffix}.png"
            self.page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
        self.page.set_viewport_size(DESKTOP)

    def visit(self, url: str, name: str) -> None:
        self.page.goto(url)
        self.shoot(name)


def _dead_webhook(desk: Desk) -> None:
    """A subscription of the approver to a port nobody listens on: its deliveries fail, for the health table."""
    with httpx.Client(base_url=desk.server.base_url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        key = client.post(f"/v1/departments/{desk.ids['approver']}/api-keys", json={}, headers=admin).json()["api_key"]
        client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers={"Authorization": f"Bearer {key}"})


def take(folder: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, serving(Path(work)) as server, sync_playwright() as playwright:
        desk = province_desk(server)
        _dead_webhook(desk)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        context = browser.new_context(base_url=server.base_url, locale="zh-CN", viewport=DESKTOP)
        camera = Camera(context.new_page(), folder)
        page = camera.page
        for url, name in (("/ui/", "anonymous-about"), ("/ui/sign-in", "anonymous-sign-in"), ("/ui/enrol", "anonymous-enrol")):
            camera.visit(url, name)
        camera.visit("/ui/sign-in?lang=en", "anonymous-sign-in-en")
        page.goto("/ui/sign-in?lang=zh-CN")

        clerk = desk.officer("approver")
        sign_in(page, clerk)
        camera.shoot("approver-home")
        page.goto("/ui/checks/new")
        page.get_by_label("申请人身份证号码").fill("3501021990")
        page.get_by_label("申请人身份证号码").press("Tab")
        camera.shoot("approver-new-check-as-typed")
        check_id = raise_check(page)
        page.locator("#urge-note").fill("请尽快答复")
        page.get_by_role("button", name="督办").click()
        page.get_by_role("status").wait_for()
        camera.shoot("approver-check-urged")
        page.goto("/ui/checks/new")
        fill_new_check(page, WRONG_CHECK_CHAR)
        page.get_by_role("button", name="核对发送对象").click()
        camera.shoot("approver-new-check-refused")
        camera.visit("/ui/checks", "approver-checks")
        camera.visit("/ui/totp", "approver-totp")

        for role, pages in (
            ("issuer", (("/ui/inbox", "inbox"), (f"/ui/checks/{check_id}", "check"))),
            ("auditor", ((f"/ui/checks/{check_id}", "check"), ("/ui/audit", "audit"), ("/ui/dashboard", "dashboard"))),
            ("operator", (("/ui/operator", "operator"), ("/ui/dashboard", "dashboard"))),
        ):
            context.clear_cookies()
            sign_in(page, desk.officer({"issuer": "gulou"}.get(role, role)))
            camera.shoot(f"{role}-home")
            for url, name in pages:
                camera.visit(url, f"{role}-{name}")
        browser.close()
        return camera.taken


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.ui.screenshots DIR", file=sys.stderr)
        return 2
    for path in take(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
