"""The operator's webhook health (/ui/operator) against the API: for a failing subscription and a healthy
one, every figure on the page equals what its department reads from GET /v1/subscriptions and
GET /v1/subscriptions/{id}/deliveries."""

from __future__ import annotations

import re
import time
from typing import Any
from uuid import UUID

from tests.api.conftest import Province
from tests.delivery.conftest import feed_of, story, subscribe
from tests.workbench.test_desk import Browser


def _api_health(province: Province, who: str) -> dict[str, dict[str, Any]]:
    """What the department ``who`` reads of its subscriptions through the API."""
    client = province.as_(who)
    found = {}
    for subscription in client.get("/v1/subscriptions", expect=200).json()["items"]:
        path = f"/v1/subscriptions/{subscription['id']}/deliveries"
        counts = {
            status: len(client.get(path, params={"status": status, "limit": 500}, expect=200).json()["items"])
            for status in ("pending", "failing", "delivered")
        }
        waiting = [item for item in client.get(path, params={"limit": 500}, expect=200).json()["items"] if item["status"] != "delivered"]
        head = min(waiting, key=lambda item: item["position"]) if waiting else None
        found[subscription["id"]] = {
            "status": subscription["status"], **{k: str(v) for k, v in counts.items()},
            "oldest": str(head["position"]) if head else "", "attempts": str(head["attempts"]) if head else "",
            "code": str(head["last_status_code"]) if head and head["last_status_code"] is not None else "",
        }
    return found


def _page_health(page: str) -> dict[str, dict[str, str]]:
    rows = re.findall(r"<tr (data-subscription=.*?)>", page, flags=re.S)
    parsed = [dict(re.findall(r'data-([a-z]+)="([^"]*)"', row)) for row in rows]
    return {row.pop("subscription"): row for row in parsed}


def _settled(province: Province, who: str, ids: set[str]) -> None:
    deadline = time.monotonic() + 30  # only stops a hung test
    while not all(h["delivered"] == str(len(ids)) for h in _api_health(province, who).values()):
        assert time.monotonic() < deadline, "the deliveries did not arrive"
        time.sleep(0.05)


def test_the_operators_webhook_figures_are_the_apis(province: Province, receiver: Any) -> None:
    p = province
    gone, healthy = receiver(script=[410]), receiver()
    failing = subscribe(p, "approver", gone.url)
    subscribe(p, "gulou", healthy.url)
    first = p.raise_check()
    deadline = time.monotonic() + 30
    while p.as_("approver").get(f"/v1/subscriptions/{failing['id']}", expect=200).json()["status"] != "failing":
        assert time.monotonic() < deadline, "the subscription did not become failing"
        time.sleep(0.05)
    story(p)  # held back for the approver, delivered to the police
    delivered = {item["id"] for item in feed_of(p, "gulou")}
    healthy.wait_for(delivered)
    _settled(p, "gulou", delivered)

    workbench = p.app.state.workbench
    workbench.settings = workbench.settings.model_copy(update={"ui_operator_department": p.auditor.id})
    page = Browser(p, p.auditor.id, "op.wang").get("/ui/operator")
    assert page.status_code == 200
    shown = _page_health(page.text)
    expected = {**_api_health(p, "approver"), **_api_health(p, "gulou")}
    assert set(shown) == set(expected)
    for key, figures in expected.items():
        assert {name: shown[key][name] for name in figures} == figures, key
    approver = expected[failing["id"]]
    assert approver["status"] == "failing" and approver["failing"] == "1" and approver["pending"] == "5"
    assert approver["oldest"] == str(p.services.log.stream_positions(UUID(first["id"]))[1])
    assert approver["code"] == "410" and "推送失败，已暂停" in page.text
    row = re.search(rf'<tr data-subscription="{failing["id"]}".*?</tr>', page.text, flags=re.S)
    assert row is not None and re.search(r"· [01] 分钟", row.group(0))  # the event's wait: just now
