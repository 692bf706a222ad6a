"""The approver clerk's check page beyond the day of tests/ui/test_roles.py: urging the issuer (督办, the
API's own command) and downloading the check's evidence bundle, which the project's offline verifier
accepts; and the masked bundle for a reader who may not see identity numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from audit.bundle import verify_bundle
from domain.timefmt import utcnow
from signing import certificates
from tests.reliability.support import ADMIN_KEY
from tests.ui.conftest import Desk
from tests.ui.test_roles import APPLICANT, raise_check, sign_in


def _root(desk: Desk) -> Any:
    with httpx.Client(base_url=desk.server.base_url, timeout=30) as client:
        return certificates.load_pem(client.get("/v1/trust/root").text)


def _history(desk: Desk, check_id: str) -> list[dict[str, Any]]:
    """The check's history as the API answers it to the approver department."""
    with httpx.Client(base_url=desk.server.base_url, timeout=30) as client:
        key = client.post(
            f"/v1/departments/{desk.ids['approver']}/api-keys", json={}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert key.status_code == 201, key.text
        response = client.get(
            f"/v1/checks/{check_id}/history", headers={"Authorization": f"Bearer {key.json()['api_key']}"}
        )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_the_clerk_urges_the_issuer_and_downloads_a_bundle_that_verifies(
    page: Any, desk: Desk, axe: Any, tmp_path: Path
) -> None:
    clerk, police = desk.officer("approver"), desk.officer("gulou")
    sign_in(page, clerk)
    check_id = raise_check(page)
    page.locator("#urge-note").fill("请尽快答复，申请人急需办理")
    page.get_by_role("button", name="督办").click()
    page.get_by_role("status").get_by_text("已督办，开具部门将收到督办通知。").wait_for()
    page.locator("ol.timeline li", has_text="Urged").get_by_text(clerk.login).wait_for()
    assert page.locator("#urged").inner_text() == "1"
    axe(page)
    urged = [event for event in _history(desk, check_id) if event["type"] == "Urged"]
    assert len(urged) == 1 and urged[0]["officer"] == clerk.login  # the API's own event, by this officer

    with page.expect_download() as download:
        page.get_by_role("link", name="下载证据包（JSON，可离线核验）").click()
    assert download.value.suggested_filename == f"evidence-{check_id}.json"
    path = tmp_path / "bundle.json"
    download.value.save_as(path)
    data = path.read_bytes()
    verdict = verify_bundle(data, _root(desk), utcnow())
    assert verdict.valid, verdict.reasons
    assert verdict.check_id == check_id and verdict.events == 2  # CheckRaised, Urged
    bundle = json.loads(data)
    assert bundle["disclosure"] == "full" and all(event["state_b64"] for event in bundle["events"])

    # The issuer addressed reads the check too, but sealed no proof of it: its bundle is masked, and verifies.
    page.context.clear_cookies()
    sign_in(page, police)
    page.goto(f"/ui/checks/{check_id}")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载证据包（JSON，可离线核验）").click()
    masked = Path(download.value.path()).read_bytes()
    masked_bundle = json.loads(masked)
    assert masked_bundle["disclosure"] == "masked" and not any(event["state_b64"] for event in masked_bundle["events"])
    assert APPLICANT not in masked.decode()
    assert verify_bundle(masked, _root(desk), utcnow()).valid


def test_a_stranger_gets_no_bundle_and_cannot_urge(page: Any, desk: Desk) -> None:
    clerk, stranger = desk.officer("approver"), desk.officer("stranger")
    sign_in(page, clerk)
    check_id = raise_check(page)
    page.context.clear_cookies()
    sign_in(page, stranger)
    response = page.goto(f"/ui/checks/{check_id}/evidence.json")
    assert response is not None and response.status == 404
    page.goto(f"/ui/checks/{check_id}")
    assert page.get_by_role("button", name="督办").count() == 0
