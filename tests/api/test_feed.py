"""The pull feed (API.md §11) on both stores: each party's events as CloudEvents in position order, each
``data.check`` exactly ``GET /v1/checks/{id}?version=v`` for that department, paging and refusals."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Province, masked


def feed(province: Province, who: str, **params: Any) -> dict[str, Any]:
    return province.as_(who).get("/v1/feed", params=params, expect=200).json()


def story(province: Province) -> str:
    check = province.raise_check()
    province.act(check["id"], "accept", "gulou")
    province.act(check["id"], "forward", "gulou")  # to fz-police ("city")
    province.act(check["id"], "reply", "city")
    province.act(check["id"], "close", "approver")
    return str(check["id"])


def test_each_party_gets_its_events_as_cloudevents(province: Province) -> None:
    check_id = story(province)
    mine = {who: [item for item in feed(province, who)["items"] if item["subject"] == check_id] for who in ("approver", "gulou", "city")}
    assert [item["data"]["type"] for item in mine["approver"]] == ["Raised", "Accepted", "Forwarded", "Replied", "Closed"]
    assert [item["data"]["type"] for item in mine["gulou"]] == ["Raised", "Accepted", "Forwarded"]  # the former issuer
    assert [item["data"]["type"] for item in mine["city"]] == ["Forwarded", "Replied", "Closed"]
    assert feed(province, "stranger")["items"] == [] and feed(province, "civil")["items"] == []
    positions = [item["data"]["position"] for item in mine["approver"]]
    assert positions == sorted(positions) and len(set(positions)) == 5
    history = province.as_("approver").get(f"/v1/checks/{check_id}/history", expect=200).json()["events"]
    assert positions == [event["position"] for event in history]
    for who, items in mine.items():
        for item in items:
            position, version = item["data"]["position"], item["data"]["version"]
            assert item["specversion"] == "1.0" and item["id"] == str(position)
            assert item["sequence"] == f"{position:020d}" and len(item["sequence"]) == 20
            assert item["source"] == f"/v1/checks/{check_id}" and item["subject"] == check_id
            assert item["type"] == f"nocert.check.{item['data']['type']}" and item["datacontenttype"] == "application/json"
            assert item["time"] == history[version - 1]["at"] and item["data"]["officer"] is None
            shown = province.as_(who).get(f"/v1/checks/{check_id}", params={"version": version}, expect=200).json()
            assert item["data"]["check"] == shown, (who, version)
    # A former issuer sees masked numbers, also in the versions from when it was addressed.
    assert mine["gulou"][0]["data"]["check"]["applicant"]["id_number"] == masked(mine["approver"][0]["data"]["check"]["applicant"]["id_number"])
    assert "*" in mine["gulou"][-1]["data"]["check"]["applicant"]["id_number"]
    assert "*" not in mine["city"][-1]["data"]["check"]["applicant"]["id_number"]


def test_paging_and_min_position(province: Province) -> None:
    story(province)
    everything = feed(province, "approver", limit=1000)["items"]
    assert feed(province, "approver", limit=1000)["next_after"] is None
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = feed(province, "approver", after=after, limit=2)
        seen.extend(page["items"])
        if page["next_after"] is None:
            break
        assert page["next_after"] == page["items"][-1]["data"]["position"]
        after = page["next_after"]
    assert seen == everything
    last = everything[-1]["data"]["position"]
    assert feed(province, "approver", after=last)["items"] == []
    assert len(feed(province, "approver", after=last - 1, min_position=last)["items"]) == 1


def test_feed_refusals(province: Province) -> None:
    assert province.admin.get("/v1/feed", expect=403).json()["code"] == "forbidden"
    assert province.anonymous.get("/v1/feed", expect=401).json()["code"] == "unauthenticated"
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}):
        assert province.as_("approver").get("/v1/feed", params=params, expect=422).json()["code"] == "validation_error"


def test_a_store_from_before_the_feed_gets_its_events_indexed(province: Province) -> None:
    from api.bootstrap import build

    story(province)
    before = {who: feed(province, who, limit=1000)["items"] for who in ("approver", "gulou", "city")}
    with province.services.database.transaction() as cursor:  # as a store written before §11 looks
        cursor.execute("DELETE FROM feed_entries")
        cursor.execute("DELETE FROM delivery_state")
    assert feed(province, "approver")["items"] == []
    build(province.services.settings).close()  # a process of the new version starts on that store
    for who, items in before.items():
        assert feed(province, who, limit=1000)["items"] == items
    build(province.services.settings).close()  # once: the next start changes nothing
    assert feed(province, "approver", limit=1000)["items"] == before["approver"]
