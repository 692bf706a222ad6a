"""Webhooks (API.md §11) on both stores, against scripted receivers: signatures (the ``standardwebhooks``
library for v1, the published key for v1a), every event, per-check order, retries, Retry-After, 410 and
the last retry making a subscription failing, resume, and subscriptions' own rules."""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from api.trust import PlatformTrust
from audit.verify import verify_ledger
from domain.timefmt import parse_time
from tests.api.conftest import Province
from tests.delivery.conftest import feed_of, story, subscribe


def verify_v1a(public_key: str, headers: dict[str, str], body: bytes) -> None:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    signatures = dict(part.split(",", 1) for part in headers["webhook-signature"].split(" "))
    key.verify(base64.b64decode(signatures["v1a"]), content)  # raises InvalidSignature


def wait_until_failing(province: Province, path: str) -> None:
    deadline = time.monotonic() + 30  # only stops a hung test
    while province.as_("approver").get(path, expect=200).json()["status"] != "failing":
        assert time.monotonic() < deadline, "the subscription did not become failing"
        time.sleep(0.05)


def test_every_event_arrives_signed_as_the_feed_shows_it(province: Province, receiver) -> None:
    hook = receiver()
    subscription = subscribe(province, "approver", hook.url)
    assert subscription["status"] == "active" and subscription["types"] is None
    assert subscription["secret"].startswith("whsec_") and len(base64.b64decode(subscription["secret"][6:])) == 32
    check_id = story(province)
    feed = [item for item in feed_of(province, "approver") if item["subject"] == check_id]
    hook.wait_for({item["id"] for item in feed})
    public_key = province.anonymous.get("/v1/trust/webhook-key", expect=200).json()["public_key"]
    verifier = Webhook(subscription["secret"])
    for attempt in hook.delivered():
        assert attempt.headers["content-type"] == "application/cloudevents+json"
        verifier.verify(attempt.body, attempt.headers)
        verify_v1a(public_key, attempt.headers, attempt.body)
    bodies = {a.webhook_id: json.loads(a.body) for a in hook.delivered()}
    assert [bodies[item["id"]] for item in feed] == feed  # what the feed shows that department
    path = f"/v1/subscriptions/{subscription['id']}/deliveries"
    deadline = time.monotonic() + 30  # only stops a hung test: a 2xx is recorded by the dispatcher's next round
    while True:
        deliveries = province.as_("approver").get(path, expect=200).json()
        if {item["status"] for item in deliveries["items"]} == {"delivered"}:
            break
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.05)
    assert [item["event_id"] for item in deliveries["items"]] == [item["id"] for item in feed]
    assert all(item["attempts"] == 1 and item["last_status_code"] == 200 and item["delivered_at"] for item in deliveries["items"])


def test_failures_are_retried_in_order_under_the_same_webhook_id(province: Province, receiver) -> None:
    hook = receiver(script=[500, "timeout", ("429", 1), 500, "down"])
    subscribe(province, "gulou", hook.url, types=["Raised", "Accepted", "Forwarded", "Urged"])
    ids: set[str] = set()
    for _ in range(2):
        check_id = story(province)
        province.act(province.raise_check()["id"], "urge", "approver", {"note": "请尽快"})
        ids |= {item["id"] for item in feed_of(province, "gulou") if item["data"]["type"] in ("Raised", "Accepted", "Forwarded", "Urged")}
    hook.wait_for(ids)
    assert set(hook.delivered_ids()) == ids  # nothing else (the type filter), nothing lost
    known = {item["id"]: item for item in feed_of(province, "gulou")}
    per_check: dict[str, list[int]] = defaultdict(list)
    for webhook_id in hook.delivered_ids():
        body = known[webhook_id]
        if webhook_id not in [str(p) for p in per_check[body["subject"]]]:
            per_check[body["subject"]].append(body["data"]["position"])
    assert check_id in per_check
    for positions in per_check.values():
        assert positions == sorted(positions)  # an event only after every earlier one of its check
    retried = [a for a in hook.attempts if a.answer != "200"]
    assert retried and all(a.webhook_id in ids for a in retried)


def test_429_waits_for_retry_after(province: Province, receiver) -> None:
    hook = receiver(script=[("429", 30)])
    subscription = subscribe(province, "approver", hook.url)
    province.raise_check()
    path = f"/v1/subscriptions/{subscription['id']}/deliveries"
    deadline = time.monotonic() + 30  # only stops a hung test
    while not (items := province.as_("approver").get(path, expect=200).json()["items"]) or items[0]["attempts"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    item = items[0]
    assert item["status"] == "pending" and item["last_status_code"] == 429 and item["last_error"] == "HTTP 429"
    # The schedule says 0.05 s; Retry-After is longer, so the next attempt is 30 s after this one.
    assert parse_time(item["next_attempt_at"]).timestamp() >= hook.attempts[0].at + 29
    assert len(hook.attempts) == 1


def test_410_makes_the_subscription_failing_until_resumed(province: Province, receiver) -> None:
    hook = receiver(script=[410])
    subscription = subscribe(province, "approver", hook.url)
    path = f"/v1/subscriptions/{subscription['id']}"
    first = province.raise_check()
    wait_until_failing(province, path)
    story(province)  # more events while failing: kept, not sent
    failing = province.as_("approver").get(f"{path}/deliveries", params={"status": "failing"}, expect=200).json()["items"]
    raised_at = province.services.log.stream_positions(UUID(first["id"]))[1]
    assert [(item["event_id"], item["last_status_code"]) for item in failing] == [(str(raised_at), 410)]
    assert len(hook.attempts) == 1
    pending = province.as_("approver").get(f"{path}/deliveries", params={"status": "pending"}, expect=200).json()["items"]
    assert len(pending) == 5
    metrics = province.anonymous.get("/metrics", expect=200).text
    assert "nocert_webhook_backlog 6.0" in metrics  # the failing delivery and the five held back
    resumed = province.as_("approver").post(f"{path}/resume", expect=200).json()
    assert resumed["status"] == "active"
    everything = {item["id"] for item in feed_of(province, "approver")}
    hook.wait_for(everything)
    assert len(hook.delivered_ids()) == len(everything) == 6
    services = province.services
    kinds = [type(event).__name__ for event in services.platform.events.get(UUID(subscription["id"]))]
    assert kinds == ["Created", "BecameFailing", "Resumed"]  # subscription changes are events
    report = verify_ledger(
        services.platform, services.database, services.log, services.keystore.root()[1],
        trust=PlatformTrust(services.platform), workers=1,
    )
    assert report.ok, report.to_dict()  # ... that the audit reads like every other


def test_the_last_retry_makes_it_failing(province: Province, receiver) -> None:
    hook = receiver(default=500)
    subscription = subscribe(province, "approver", hook.url)
    province.raise_check()
    path = f"/v1/subscriptions/{subscription['id']}"
    wait_until_failing(province, path)
    assert len(hook.attempts) == 5  # the first attempt and the four retries of the schedule
    item = province.as_("approver").get(f"{path}/deliveries", expect=200).json()["items"][0]
    assert item["status"] == "failing" and item["attempts"] == 5 and item["last_status_code"] == 500
    assert "last retry" in item["last_error"] and item["next_attempt_at"] is None


def test_subscription_rules(province: Province, receiver) -> None:
    hook = receiver()
    for url in ("http://example.com/hook", "ftp://example.com/", "https://127.0.0.1/hook", "https://10.1.2.3/x",
                "https://[::1]/x", "https://169.254.169.254/latest", "https://0.0.0.0/", "https://user:pw@example.com/", "not a url"):
        answer = province.as_("approver").post("/v1/subscriptions", json={"url": url}, expect=422).json()
        assert answer["code"] == "invalid_url", url
    assert province.as_("approver").post("/v1/subscriptions", json={"url": hook.url, "types": ["Nope"]}, expect=422).json()["code"] == "validation_error"
    assert province.admin.post("/v1/subscriptions", json={"url": hook.url}, expect=403).json()["code"] == "forbidden"
    mine = subscribe(province, "approver", hook.url, types=["Replied"])
    path = f"/v1/subscriptions/{mine['id']}"
    assert "secret" not in province.as_("approver").get(path, expect=200).json()
    assert province.as_("gulou").get(path, expect=404).json()["code"] == "not_found"
    assert province.as_("gulou").delete(path, expect=404).json()["code"] == "not_found"
    assert province.as_("gulou").post(f"{path}/resume", expect=404).json()["code"] == "not_found"
    listed = province.as_("approver").get("/v1/subscriptions", expect=200).json()
    assert [item["id"] for item in listed["items"]] == [mine["id"]] and listed["items"][0]["types"] == ["Replied"]
    assert province.as_("gulou").get("/v1/subscriptions", expect=200).json()["items"] == []
    province.as_("approver").delete(path, expect=204)
    assert province.as_("approver").get(path, expect=404).json()["code"] == "not_found"
    assert province.as_("approver").get("/v1/subscriptions", expect=200).json()["items"] == []
    events = [type(e).__name__ for e in province.services.platform.events.get(UUID(mine["id"]))]
    assert events == ["Created", "Deleted"]
    stored = json.dumps([e.__dict__ for e in province.services.platform.events.get(UUID(mine["id"]))], default=str)
    assert mine["secret"] not in stored and mine["secret"][6:] not in stored  # sealed, never in clear


def test_the_integrators_examples_verify_real_deliveries(province: Province, receiver) -> None:
    """The two Python examples of docs/webhooks.md, run as written against a delivery."""
    import re
    from pathlib import Path

    hook = receiver()
    subscription = subscribe(province, "approver", hook.url)
    province.raise_check()
    hook.wait_for({str(province.position())})
    public_key = province.anonymous.get("/v1/trust/webhook-key", expect=200).json()["public_key"]
    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    library, plain = re.findall(r"```python\n(.*?)```", text, re.S)
    scope: dict[str, object] = {}
    exec(library.replace('"whsec_…"', repr(subscription["secret"])), scope)  # noqa: S102 - our own documentation
    exec(plain.replace('"whpk_…"', repr(public_key)), scope)  # noqa: S102
    attempt = hook.delivered()[0]
    assert scope["receive"](attempt.body, attempt.headers)["id"] == attempt.webhook_id  # type: ignore[operator]
    assert scope["genuine_v1a"](attempt.body, attempt.headers) is True  # type: ignore[operator]
    assert scope["receive"](attempt.body + b" ", attempt.headers) is None  # type: ignore[operator]
    assert scope["genuine_v1a"](attempt.body + b" ", attempt.headers) is False  # type: ignore[operator]
